/**
 * The PostgreSQL pool every process uses. Connections run in the configured schema (created by the
 * migrations) with a statement timeout, so a stuck query cannot hold a request forever.
 */
import pg from 'pg'
import { ConfigMissingError } from '../config/errors.js'
import type { Config } from '../config/index.js'

export type Pool = pg.Pool
export type PoolClient = pg.PoolClient

// BIGINT (int8) and NUMERIC come back as JS numbers where they fit; ids and counts here stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => {
  const n = Number(v)
  return Number.isSafeInteger(n) ? n : v
})

/** Opens a pool for `config.databaseUrl` that uses `config.dbSchema`. */
export function createPool(
  config: Pick<Config, 'databaseUrl' | 'dbSchema' | 'dbPoolMax' | 'dbStatementTimeout'> &
    Partial<Pick<Config, 'dbConnectTimeout'>>,
  options: { applicationName?: string } = {},
): Pool {
  if (!config.databaseUrl)
    throw new ConfigMissingError(
      'DATABASE_URL',
      'this command needs PostgreSQL: set postgres://user@host:port/db, or run it in the folder of a running fleet up (--data-dir), whose PostgreSQL it then uses',
    )
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: config.dbPoolMax,
    // Bounds opening a connection and waiting for a free one: a hung server turns into an error, not a hang.
    connectionTimeoutMillis: config.dbConnectTimeout ?? 5_000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'fleet',
    options: `-c search_path=${config.dbSchema},public -c statement_timeout=${config.dbStatementTimeout}`,
  })
  // An idle client that loses its connection emits 'error' on the pool; the pool drops it and opens
  // another on the next query. Without a listener the process would crash.
  pool.on('error', () => {})
  return pool
}
