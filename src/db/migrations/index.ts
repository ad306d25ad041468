/**
 * Fleet's own migrations, in the order they apply; an application's follow them (`defineApp({ migrations })`).
 * Ids never change once released; add new ones at the end.
 */
import { jobsSchema } from './005_jobs.js'

/** One schema change, applied once, in order, in its own transaction (`{ id: '001_notes', up: 'CREATE TABLE ...' }`). */
export interface Migration {
  /** Stable id, recorded in fleet_migrations. */
  readonly id: string
  /** SQL run in one transaction, in the configured schema. */
  readonly up: string
}

export const migrations: readonly Migration[] = [jobsSchema]
