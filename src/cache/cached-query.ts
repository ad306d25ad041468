/**
 * A cached query, declared once: its name, its parameterized SQL and how long its results live. The tables
 * it reads (its tags) are found by PostgreSQL's parser when the cache plans it; `cache.run(query, params)`
 * reads it through the query cache. An application lists its queries in `defineApp({ queries })` so that a
 * query the cache cannot take (not a plain SELECT, no table, an unknown relation) fails at start, not at its
 * first request.
 */
import type { Row } from '../db/database.js'
import { CachedQueryInvalidError } from './errors.js'

/** What `defineQuery` takes: a name and one SELECT. */
export interface CachedQueryOptions<P extends readonly unknown[]> {
  /** Name in logs and errors: lower-case letters, digits, dots and dashes (`hello.greetings`). */
  readonly name: string
  /** One SELECT with `$1`, `$2`... placeholders. */
  readonly sql: string
  /** How long a result is fresh, in ms (default FLEET_CACHE_TTL). */
  readonly ttl?: number
  /** How long past its TTL a result may be served stale while it reloads, in ms (default FLEET_CACHE_GRACE). */
  readonly grace?: number
  /** Entity tags of a call, beyond its tables (e.g. `products:42` for a read by id). */
  readonly tags?: (params: P) => readonly string[]
}

/** A declared cached query (what `defineQuery` returns); `R` is the row type it answers with. */
export interface CachedQuery<R extends Row = Row, P extends readonly unknown[] = readonly unknown[]>
  extends CachedQueryOptions<P> {
  /** Phantom: the row type, for `cache.run()`'s result. */
  readonly rows?: R[]
}

/** A cached query of any row and parameter types, for lists of them. */
// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list needs open row and parameter types
export type AnyCachedQuery = CachedQuery<any, any>

const NAME = /^[a-z][a-z0-9.-]{0,99}$/

/**
 * Declares a cached query.
 * @example
 * export const greetings = defineQuery<{ id: number; text: string }, [string]>({
 *   name: 'hello.greetings-by-lang',
 *   sql: 'SELECT id, text FROM greetings WHERE lang = $1 ORDER BY id',
 *   ttl: 60_000,
 * })
 * const { rows, status } = await deps.cache.run(greetings, ['en'])
 */
export function defineQuery<R extends Row = Row, P extends readonly unknown[] = readonly unknown[]>(
  options: CachedQueryOptions<P>,
): CachedQuery<R, P> {
  if (!NAME.test(options.name)) {
    throw new CachedQueryInvalidError(
      `cached query name ${JSON.stringify(options.name)} must be lower-case letters, digits, dots and dashes`,
    )
  }
  if (typeof options.sql !== 'string' || options.sql.trim() === '') {
    throw new CachedQueryInvalidError(`cached query ${options.name}: sql must be a SELECT statement`)
  }
  return Object.freeze({ ...options })
}
