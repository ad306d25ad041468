/**
 * One web server instance from start to exit: open connections, migrate, listen, announce in the registry;
 * on SIGTERM turn unready, keep serving for the drain delay, deregister, finish in-flight requests (bounded),
 * close the pools, exit 0.
 */
import type { FastifyInstance } from 'fastify'
import { Cache } from '../cache/cache.js'
import { connectCacheRedis } from '../cache/connect.js'
import { ConfigMissingError } from '../config/errors.js'
import { type Config, makeInstanceId } from '../config/index.js'
import { Database } from '../db/database.js'
import { type Migration, migrate } from '../db/migrate.js'
import { createPool } from '../db/pool.js'
import { createLogger, flushLogFiles, type Logger } from '../log.js'
import { connectRedis } from '../redis/connect.js'
import { listenerUrl, registerProcess } from '../registry/registration.js'
import { portTaken } from '../stack/errors.js'
import type { ProcessDeps } from './deps.js'
import type { Readiness } from './health.js'
import { createMetricsRegistry } from './metrics.js'
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

/**
 * Opens the connections an instance needs: PostgreSQL, the store Redis and the cache Redis, and makes the
 * cache (its write observer is on `db` from here on). Call `prepareDeps` before serving.
 */
export function openDeps(config: Config, role: string, logger?: Logger): ProcessDeps {
  if (!config.databaseUrl)
    throw new ConfigMissingError(
      'DATABASE_URL',
      `a ${role} needs PostgreSQL: set postgres://... (fleet up does)`,
    )
  if (!config.redisUrl)
    throw new ConfigMissingError(
      'REDIS_URL',
      `a ${role} needs the store Redis: set redis://... (fleet up does)`,
    )
  const instanceId = makeInstanceId(role, config)
  const log = logger ?? createLogger(config, { role, instance: instanceId })
  const onError = (which: string) => (err: Error) =>
    log.warn({ err: err.message, redis: which }, 'redis error')
  // Bounded: a hung store Redis fails a command after FLEET_REDIS_COMMAND_TIMEOUT instead of holding it.
  const redis = connectRedis(config.redisUrl, {
    name: instanceId,
    onError: onError('store'),
    extra: config.redisCommandTimeout > 0 ? { commandTimeout: config.redisCommandTimeout } : {},
  })
  // Its own connection even when it is the store's server: the cache fails fast and times out commands,
  // so that its breaker, not a request, absorbs a dead Redis.
  const cacheRedis = connectCacheRedis(config, { name: instanceId, onError: onError('cache') })
  // Bounded waits on PostgreSQL: a web server's request gives up after FLEET_DB_QUERY_TIMEOUT; a worker's
  // job after the statement timeout plus a margin (the server would have cancelled it by then).
  const queryTimeout =
    role === 'web'
      ? config.dbQueryTimeout
      : config.dbStatementTimeout > 0
        ? config.dbStatementTimeout + 5_000
        : 0
  const db = new Database(createPool(config, { applicationName: instanceId }), undefined, { queryTimeout })
  const metrics = createMetricsRegistry({ role, instance: instanceId })
  const cache = new Cache({ redis: cacheRedis, db, config, logger: log, metrics })
  return { config, logger: log, instanceId, db, redis, cacheRedis, cache, metrics }
}

/**
 * Applies pending migrations (under the advisory lock; default: Fleet's own) and starts the cache: triggers,
 * catalog, LISTEN.
 */
export async function prepareDeps(deps: ProcessDeps, migrations?: readonly Migration[]): Promise<void> {
  await migrate(deps.db.pool, deps.config.dbSchema, { logger: deps.logger, migrations })
  await deps.cache.start()
}

/** Closes what openDeps opened. */
export async function closeDeps(deps: ProcessDeps): Promise<void> {
  await deps.cache.close().catch((err: Error) => deps.logger.warn({ err }, 'cache close failed'))
  await deps.db.pool.end().catch(() => {})
  deps.redis.disconnect()
  deps.cacheRedis.disconnect()
}

/** Starts a web server instance and returns once it listens and is announced. */
export async function startWebServer(
  config: Config,
  options: WebServerOptions = {},
): Promise<RunningWebServer> {
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
  const url = config.webAdvertiseUrl ?? listenerUrl(config.webHost, port)
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

/**
 * Runs until SIGTERM or SIGINT, then stops gracefully; if that takes longer than FLEET_SHUTDOWN_TIMEOUT,
 * exits anyway with code 1.
 */
export function exitOnSignals(stop: () => Promise<void>, config: Config, logger: Logger): void {
  let signalled = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return
    signalled = true
    logger.info({ signal }, 'shutting down')
    const timer = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeout }, 'shutdown timed out; exiting anyway')
      process.exit(1)
    }, config.shutdownTimeout + config.drainDelay)
    timer.unref()
    // The log file's last lines are on disk before the exit: process.exit writes out the logger's buffer
    // synchronously, but cannot wait for a write already under way.
    stop().then(
      async () => {
        await flushLogFiles()
        process.exit(0)
      },
      async (err: unknown) => {
        logger.error({ err }, 'shutdown failed')
        await flushLogFiles()
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}
