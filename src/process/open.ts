/**
 * Opening and closing what a process needs (PostgreSQL, the store Redis, the cache Redis, the cache, the
 * metrics registry): the same for a web server and a worker.
 */
import { Cache } from '../cache/cache.js'
import { connectCacheRedis } from '../cache/connect.js'
import { ConfigMissingError } from '../config/errors.js'
import { type Config, makeInstanceId } from '../config/index.js'
import { Database } from '../db/database.js'
import { type Migration, migrate } from '../db/migrate.js'
import { createPool } from '../db/pool.js'
import { createLogger, type Logger } from '../log.js'
import { replicasOnline, setWriteConcern } from '../redis/acknowledged.js'
import { connectRedis } from '../redis/connect.js'
import type { ProcessDeps } from './deps.js'
import { createMetricsRegistry } from './metrics.js'

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
  // Writes acknowledged to clients (sessions, job submissions) wait for the store's replicas first.
  setWriteConcern(
    redis,
    { replicas: config.storeWaitReplicas, timeoutMs: config.storeWaitTimeout },
    onError('store'),
  )
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
  const wanted = deps.config.storeWaitReplicas
  const online = wanted > 0 ? await replicasOnline(deps.redis).catch(() => undefined) : undefined
  if (online !== undefined && online < wanted) {
    deps.logger.warn(
      { replicas: online, FLEET_STORE_WAIT_REPLICAS: wanted },
      'the store Redis has fewer replicas than FLEET_STORE_WAIT_REPLICAS: session writes and job submissions answer 503 FLEET_E_REDIS_NOT_REPLICATED until enough are connected (0 for a single Redis)',
    )
  }
}

/** Closes what openDeps opened. */
export async function closeDeps(deps: ProcessDeps): Promise<void> {
  await deps.cache.close().catch((err: Error) => deps.logger.warn({ err }, 'cache close failed'))
  await deps.db.pool.end().catch(() => {})
  deps.redis.disconnect()
  deps.cacheRedis.disconnect()
}
