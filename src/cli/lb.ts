import type { Command } from 'commander'
import { ConfigMissingError } from '../config/errors.js'
import type { Config } from '../config/index.js'
import type { DashboardOptions } from '../dashboard/options.js'
import type { LoadBalancerOptions } from '../lb/options.js'
import type { AdminExtensionFactory } from '../lb/view.js'
import type { Logger } from '../log.js'
import type { Redis } from '../redis/connect.js'
import type { Registration } from '../registry/registration.js'
import type { Registry } from '../registry/registry.js'
import { addSettingOptions, configFromOptions } from './options.js'

/**
 * `fleet lb`: the load balancer, alone. With `--upstream` URLs it needs nothing else; without, it discovers
 * web servers in the registry of the store Redis (`REDIS_URL`). Runs until SIGTERM/SIGINT, then drains.
 */
export function registerLb(program: Command): void {
  addSettingOptions(
    program
      .command('lb')
      .description('Run the HTTP load balancer in front of the web servers (registry or --upstream URLs).'),
    'lb',
  ).action(async (opts: Record<string, unknown>) => {
    const config = configFromOptions('lb', opts)
    // Loaded here so that the LB process carries only the LB's code.
    const [{ lbOptionsFromConfig, startLoadBalancer }, { createLogger }, { dashboardOptionsFromConfig }] =
      await Promise.all([import('../lb/index.js'), import('../log.js'), import('../dashboard/options.js')])
    const dashboard = dashboardOptionsFromConfig(config)
    const options = lbOptionsFromConfig(config)
    const logger = createLogger(config, { role: 'lb', instance: options.instanceId })
    let redis: Redis | undefined
    let registry: Registry | undefined
    if (options.upstreams.length === 0 && !config.redisUrl) {
      throw new ConfigMissingError(
        'FLEET_LB_UPSTREAMS',
        'fleet lb needs --upstream URLs, or REDIS_URL to discover web servers in the registry',
      )
    }
    if (config.redisUrl) {
      // Loaded only with a registry (discovery, and this LB's own entry), so an LB with fixed upstreams and
      // no REDIS_URL does not carry a Redis client.
      const { connectRedis } = await import('../redis/connect.js')
      redis = connectRedis(config.redisUrl, {
        name: options.instanceId,
        onError: (err) => logger.debug({ err: err.message }, 'registry redis error'),
      })
      if (options.upstreams.length === 0) {
        const { Registry } = await import('../registry/registry.js')
        registry = new Registry(redis, config.redisPrefix)
      }
    }
    // The HAProxy engine runs the Debian package's haproxy: found on PATH, or installed (as root) with apt-get.
    const haproxyPath =
      options.engine === 'haproxy'
        ? (await import('../stack/programs.js')).ensureProgram(
            { command: 'haproxy', pkg: 'haproxy', otherwise: 'run the Node engine (--engine node)' },
            (line) => process.stderr.write(`fleet lb: ${line}\n`),
          )
        : undefined
    const lb = await startLoadBalancer({
      ...options,
      logger,
      registry,
      haproxyPath,
      // The dashboard plugs into the admin port; the LB itself knows nothing of it (src/lb/view.ts).
      adminExtension: dashboard.enabled ? await dashboardOf(dashboard, logger) : undefined,
    })
    const registration = redis ? await announce(redis, config, options, lb, logger) : undefined
    process.stdout.write(
      `fleet lb: ${options.instanceId} listening on ${options.tls ? 'https' : 'http'}://${options.host}:${lb.port} (admin :${lb.adminPort}, engine ${options.engine ?? 'node'}${options.tls ? ', HTTP/2 and HTTP/1.1' : ''})\n`,
    )
    // A renewed certificate: SIGHUP reads it again (the log file, when there is one, is reopened too).
    if (options.tls) {
      process.on('SIGHUP', () => {
        lb.reloadCertificate().catch((err: Error) =>
          logger.error({ err: err.message }, 'TLS certificate reload failed; the old one stays'),
        )
      })
    }
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        logger.info({ signal }, 'stopping the load balancer')
        resolve()
      }
      process.once('SIGTERM', stop)
      process.once('SIGINT', stop)
    })
    await registration?.setState('draining')
    await lb.close()
    await registration?.stop()
    redis?.disconnect()
  })
}

/**
 * This LB's entry in the registry (role `lb`, its name as id, its public and admin URLs), renewed like a
 * web server's, so `fleet status` and the dashboards of the other LBs list it.
 */
async function announce(
  redis: Redis,
  config: Config,
  options: LoadBalancerOptions,
  lb: { port: number; adminPort: number },
  logger: Logger,
): Promise<Registration> {
  const [{ registerProcess }, { reachableUrl }] = await Promise.all([
    import('../registry/registration.js'),
    import('../registry/advertise.js'),
  ])
  const adminHost = options.adminHost.split(',')[0]?.trim() ?? '127.0.0.1'
  const registration = registerProcess(
    { redis, config, instanceId: options.instanceId, logger },
    'lb',
    reachableUrl(options.host, lb.port, options.tls ? 'https' : 'http'),
    'ready',
    { adminUrl: reachableUrl(adminHost, lb.adminPort) },
  )
  await registration.start()
  return registration
}

/** The dashboard's extension of the admin port, reading `fleet up`'s status through its control socket. */
async function dashboardOf(
  options: DashboardOptions,
  logger: Logger,
): Promise<AdminExtensionFactory | undefined> {
  const [{ dashboardExtension }, { requestStatus }] = await Promise.all([
    import('../dashboard/index.js'),
    import('../stack/control.js'),
  ])
  return dashboardExtension({ ...options, readSupervisor: requestStatus }, logger)
}
