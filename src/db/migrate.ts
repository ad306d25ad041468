/**
 * Applies migrations once, under a PostgreSQL advisory lock: however many processes start together, one
 * applies each pending migration (in its own transaction) and the others wait, then find nothing to do.
 */
import type { Logger } from '../log.js'
import { MigrationError } from './errors.js'
import { migrations as allMigrations, type Migration } from './migrations/index.js'
import type { Pool } from './pool.js'

export type { Migration }

export interface MigrateResult {
  applied: string[]
  skipped: string[]
}

/** Applies every pending migration in `schema`; returns the ids it applied and those already there. */
export async function migrate(
  pool: Pool,
  schema: string,
  options: { logger?: Logger; migrations?: readonly Migration[] } = {},
): Promise<MigrateResult> {
  const migrations = options.migrations ?? allMigrations
  const client = await pool.connect()
  const ident = client.escapeIdentifier(schema)
  const lockKey = `fleet:migrate:${schema}`
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [lockKey])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident}`)
    await client.query(`SET search_path TO ${ident}, public`)
    await client.query(
      `CREATE TABLE IF NOT EXISTS fleet_migrations (id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    )
    const done = new Set(
      (await client.query<{ id: string }>('SELECT id FROM fleet_migrations')).rows.map((r) => r.id),
    )
    const result: MigrateResult = { applied: [], skipped: [] }
    for (const m of migrations) {
      if (done.has(m.id)) {
        result.skipped.push(m.id)
        continue
      }
      try {
        await client.query('BEGIN')
        await client.query(m.up)
        await client.query('INSERT INTO fleet_migrations (id) VALUES ($1)', [m.id])
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw new MigrationError(m.id, { cause: err })
      }
      options.logger?.info({ migration: m.id }, 'migration applied')
      result.applied.push(m.id)
    }
    return result
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => {})
    client.release()
  }
}
