/**
 * What an application plugin (an app's routes, the jobs routes) receives from the web runtime. Everything here is
 * a connection or a stateless helper: no user data lives in the process between requests.
 */
import type { Registry as MetricsRegistry } from 'prom-client'
import type { Cache } from '../cache/cache.js'
import type { Config } from '../config/index.js'
import type { Database } from '../db/database.js'
import type { Logger } from '../log.js'
import type { Redis } from '../redis/connect.js'

export interface AppDeps {
  /** Fleet's settings and the app's (read the app's with `appSettings(specs, deps.config)`). */
  config: Config
  logger: Logger
  /** PostgreSQL through Fleet's database layer (writes invalidate the cache). */
  db: Database
  /** The store Redis: sessions, queues, registry. */
  redis: Redis
  /** The cache Redis (CACHE_REDIS_URL, else the store's server): fails fast, for the cache's breaker. */
  cacheRedis: Redis
  /** Cached queries and objects; its write observer is installed on `db`. Started by `prepareDeps`. */
  cache: Cache
  /** Prometheus registry of this process; components register their metrics here. */
  metrics: MetricsRegistry
  /** This process's id (X-Served-By). */
  instanceId: string
}
