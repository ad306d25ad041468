/**
 * What a Fleet process holds (ProcessDeps: connections and stateless helpers; no user data lives in the
 * process between requests), and the narrow view of it an app gets (AppDeps). Shared by the web server and
 * the worker: src/process/open.ts opens it.
 */
import type { Registry as MetricsRegistry } from 'prom-client'
import type { Cache } from '../cache/cache.js'
import type { Config } from '../config/index.js'
import type { Database } from '../db/database.js'
import type { Logger } from '../log.js'
import type { Redis } from '../redis/connect.js'

/**
 * The settings of a process, as an app sees them: read the app's own with `appSettings(specs, deps.config)`
 * (typed by its specs). Fleet's settings are not an app's API: they may be renamed without notice.
 */
export type AppConfig = object

/**
 * What an app's routes and start/stop steps receive: handles, not Fleet's own connections (those stay
 * Fleet's, so an app cannot bypass the cache's invalidation or the session and queue layouts).
 * @example
 * export const noteRoutes: Routes = async (app, deps) => {
 *   app.get('/notes', async () => (await deps.cache.run(latestNotes, [])).rows)
 * }
 */
export interface AppDeps {
  /** PostgreSQL through Fleet's database layer: writes through it invalidate the cache. */
  readonly db: Database
  /** Cached queries, objects and responses. */
  readonly cache: Cache
  readonly logger: Logger
  /** For `appSettings(specs, deps.config)`. */
  readonly config: AppConfig
  /** This process's id (X-Served-By). */
  readonly instanceId: string
}

/** The whole of `deps` (a Fleet process's): what Fleet's own helpers that apps call (jobClient...) need. */
export function processDeps(deps: AppDeps): ProcessDeps {
  if (!('redis' in deps)) throw new TypeError('not the deps Fleet handed to the app (routes, steps)')
  return deps as ProcessDeps
}

export interface ProcessDeps extends AppDeps {
  /** Fleet's settings and the app's. */
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
