/**
 * Job records in PostgreSQL (table `fleet_jobs`): the final state, result or error of every durable job.
 * `complete` applies a job's effects and records it in one transaction; a record that already exists means
 * an earlier run took effect, so the second run's effects are rolled back and the recorded result returned.
 */
import type { Database, Queryable } from '../db/database.js'

export type FinalState = 'completed' | 'failed' | 'cancelled'

export interface JobError {
  code: string
  message: string
  details?: unknown
}

export interface JobRecord {
  id: string
  type: string
  owner: string
  /** Hash of the payload when an Idempotency-Key named the job. */
  hash: string | null
  state: FinalState
  result: unknown
  error: JobError | null
  attempts: number
  createdAt: Date
  startedAt: Date | null
  finishedAt: Date
}

interface Row extends Record<string, unknown> {
  id: string
  type: string
  owner: string
  payload_hash: string | null
  state: FinalState
  result: unknown
  error: JobError | null
  attempts: number
  created_at: Date
  started_at: Date | null
  finished_at: Date
}

function toRecord(r: Row): JobRecord {
  return {
    id: r.id,
    type: r.type,
    owner: r.owner,
    hash: r.payload_hash,
    state: r.state,
    result: r.result,
    error: r.error,
    attempts: r.attempts,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  }
}

export interface RecordInput {
  id: string
  type: string
  owner: string
  hash?: string
  attempts: number
  createdAt: number
  startedAt?: number
}

const INSERT = `
  INSERT INTO fleet_jobs (id, type, owner, state, result, error, attempts, created_at, started_at, payload_hash)
  VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8 / 1000.0), to_timestamp($9 / 1000.0), $10)
  ON CONFLICT (id) DO NOTHING
  RETURNING id`

export class JobStore {
  readonly #db: Database

  constructor(db: Database) {
    this.#db = db
  }

  /** The record of job `id`, if it ended. */
  async get(id: string): Promise<JobRecord | undefined> {
    const { rows } = await this.#db.query<Row>('SELECT * FROM fleet_jobs WHERE id = $1', [id])
    return rows[0] ? toRecord(rows[0]) : undefined
  }

  /**
   * Records the job completed and applies `effects` in the same transaction, once: when a record exists
   * already, nothing is applied and the recorded outcome is returned with `applied: false`.
   */
  async complete<R>(
    input: RecordInput,
    effects: (tx: Queryable) => Promise<R>,
  ): Promise<{ applied: true; result: R } | { applied: false; record: JobRecord }> {
    const outcome = await this.#db.transaction(async (tx) => {
      const ins = await tx.query(INSERT, [
        input.id,
        input.type,
        input.owner,
        'completed',
        null,
        null,
        input.attempts,
        input.createdAt,
        input.startedAt ?? null,
        input.hash ?? null,
      ])
      if (ins.rowCount === 0) return { applied: false as const }
      const result = await effects(tx)
      await tx.query('UPDATE fleet_jobs SET result = $2 WHERE id = $1', [
        input.id,
        JSON.stringify(result ?? null),
      ])
      return { applied: true as const, result }
    })
    if (outcome.applied) return outcome
    const record = await this.get(input.id)
    if (!record) throw new Error(`job record ${input.id} vanished`)
    return { applied: false, record }
  }

  /** Records a failed or cancelled end (first writer wins); returns false when a record existed. */
  async end(input: RecordInput, state: 'failed' | 'cancelled', error: JobError): Promise<boolean> {
    const { rowCount } = await this.#db.query(INSERT, [
      input.id,
      input.type,
      input.owner,
      state,
      null,
      JSON.stringify(error),
      input.attempts,
      input.createdAt,
      input.startedAt ?? null,
      input.hash ?? null,
    ])
    return (rowCount ?? 0) > 0
  }

  /** Durations of jobs of each type that ended in the last `sinceMs` (for `fleet jobs stats`). */
  async durations(
    sinceMs: number,
  ): Promise<{ type: string; state: FinalState; count: number; p50: number | null; p99: number | null }[]> {
    const { rows } = await this.#db.query<{
      type: string
      state: FinalState
      count: number
      p50: number | null
      p99: number | null
    }>(
      `SELECT type, state, count(*)::int AS count,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at) * 1000) AS p50,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at) * 1000) AS p99
         FROM fleet_jobs
        WHERE finished_at > now() - ($1 / 1000.0) * interval '1 second'
        GROUP BY type, state ORDER BY type, state`,
      [sinceMs],
    )
    return rows
  }
}
