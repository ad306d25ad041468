/**
 * One web server instance from start to exit: open connections, migrate, listen, announce in the registry;
 * on SIGTERM turn unready, keep serving for the drain delay, deregister, finish in-flight requests (bounded),
 * close the pools, exit 0.
 */
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config/index.js'
import type { Migration } from '../db/migrate.js'
import { portTaken } from '../errors.js'
import type { ProcessDeps } from '../process/deps.js'
import { closeDeps, openDeps, prepareDeps } from '../process/open.js'
import { advertisedUrl, logAdvertised } from '../registry/advertise.js'
import { registerProcess } from '../registry/registration.js'
import type { Readiness } from './health.js'
import { type BuildOptions, buildServer, type Routes } from './server.js'

export interface WebServerOptions {
  routes?: readonly Routes[]
  /** Migrations to apply before serving (default: Fleet's own). */
  migrations?: readonly Migration[]
  /** Title and version of the OpenAPI document. */
  openapi?: BuildOptions['openapi']
  /** Runs once connections are open and migrations applied, before the server listens. */
  beforeListen?: (deps: ProcessDeps) => Promise<void>
  /** Runs after the server closed, before the connections close (release what beforeListen opened). */
  afterClose?: (deps: ProcessDeps) => Promise<void>
}

export interface RunningWebServer {
  app: FastifyInstance
  deps: ProcessDeps
  url: string
  /** The graceful shutdown sequence; resolves when everything is closed. */
  stop(): Promise<void>
}

/** Starts a web server instance and returns once it listens and is announced. */
export async function startWebServer(
  config: Config,
  options: WebServerOptions = {},
): Promise<RunningWebServer> {
  const address = (port: number) =>
    advertisedUrl({
      host: config.webHost,
      port,
      advertiseUrl: config.webAdvertiseUrl,
      settings: { host: 'FLEET_WEB_HOST', advertise: 'FLEET_WEB_ADVERTISE_URL' },
    })
  await address(config.webPort) // an address nobody else reaches is refused before anything opens
  const deps = openDeps(config, 'web')
  const { logger } = deps
  await prepareDeps(deps, options.migrations)
  await options.beforeListen?.(deps)
  const readiness: Readiness = { draining: false }
  const app = await buildServer(deps, { routes: options.routes, readiness, openapi: options.openapi })
  await app.listen({ host: config.webHost, port: config.webPort }).catch((err: unknown) => {
    throw portTaken(err, config.webPort, 'FLEET_WEB_PORT', `the web server on ${config.webHost}`)
  })
  const { port } = app.server.address() as { port: number }
  const advertised = await address(port)
  logAdvertised(logger, advertised, 'FLEET_WEB_ADVERTISE_URL')
  const { url } = advertised
  const registration = registerProcess(deps, 'web', url, 'ready')
  await registration.start()
  logger.info({ url }, 'web server ready')

  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= (async () => {
      readiness.draining = true
      await registration.setState('draining')
      logger.info({ drainDelayMs: config.drainDelay }, 'draining')
      await new Promise((r) => setTimeout(r, config.drainDelay))
      await registration.stop()
      await app.close()
      await options.afterClose?.(deps)
      await closeDeps(deps)
      logger.info('web server stopped')
    })()
    return stopping
  }
  return { app, deps, url, stop }
}
