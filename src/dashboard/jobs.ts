/**
 * The job queues as the dashboard shows them, read from BullMQ's keys in the store Redis: per type the
 * waiting, active, delayed, completed and failed counts, and the last failures with their error codes. And
 * the one action: retry a failed job, through BullMQ's own `Job.retry`.
 *
 * A durable job that failed also has its final record in PostgreSQL (`fleet_jobs`), and a worker that finds a
 * record replays it instead of running the job; so a retry first takes that record out (it holds no effect: a
 * failed job applied none), and puts it back if BullMQ refuses the retry.
 */
import type { Queue } from 'bullmq'
import type { Pool } from '../db/pool.js'
import type { Redis } from '../redis/connect.js'
import { DashboardJobNotFailedError, DashboardJobNotFoundError, DashboardUnavailableError } from './errors.js'

export interface JobTypeCounts {
  type: string
  waiting: number
  active: number
  delayed: number
  /** Finished jobs still kept in Redis (retention). */
  completed: number
  failed: number
}

export interface JobFailure {
  type: string
  id: string
  /** The error code (`FLEET_E_*`, or an app's own), split from BullMQ's failedReason. */
  code: string
  message: string
  /** Epoch ms. */
  failedAt: number
  attempts: number
  /** False for a cancelled job (its owner asked for the stop). */
  retryable: boolean
}

/** Most job types shown (found by their queues' keys). */
const MAX_TYPES = 50
/** Failures listed, newest first, over every type. */
const MAX_FAILURES = 10
/** SCAN calls per reading while looking for queues; a big keyspace is walked over several readings. */
const SCANS_PER_READ = 10
/** A full walk for new queues starts again this often. */
const RESCAN_MS = 10_000

type BullModule = typeof import('bullmq')
type OutcomeModule = typeof import('../jobs/outcome.js')

export class JobQueues {
  readonly #redis: Redis
  readonly #prefix: string
  readonly #queues = new Map<string, Queue>()
  readonly #failures = new Map<string, JobFailure>()
  #bull: Promise<[BullModule, OutcomeModule]> | undefined
  #types = new Set<string>()
  #cursor = '0'
  #walkStartedAt = 0
  #walking = false

  /** `prefix` is FLEET_REDIS_PREFIX; the queues live under `<prefix>{jobs}`. */
  constructor(redis: Redis, prefix: string) {
    this.#redis = redis
    this.#prefix = `${prefix}{jobs}`
  }

  /** BullMQ is loaded on first use, so a load balancer nobody watches never carries it. */
  #modules(): Promise<[BullModule, OutcomeModule]> {
    this.#bull ??= Promise.all([import('bullmq'), import('../jobs/outcome.js')])
    return this.#bull
  }

  async #queue(type: string): Promise<Queue> {
    let q = this.#queues.get(type)
    if (!q) {
      const [{ Queue }] = await this.#modules()
      q = new Queue(type, { connection: this.#redis, prefix: this.#prefix, skipVersionCheck: true })
      q.on('error', () => {}) // surfaces as failed commands
      this.#queues.set(type, q)
    }
    return q
  }

  /** Walks the keyspace for `<prefix>:<type>:meta`, a few SCAN calls per reading. */
  async #discover(now: number): Promise<void> {
    if (!this.#walking && now - this.#walkStartedAt >= RESCAN_MS) {
      this.#walking = true
      this.#walkStartedAt = now
      this.#cursor = '0'
    }
    if (!this.#walking) return
    const head = `${this.#prefix}:`
    for (let i = 0; i < SCANS_PER_READ; i++) {
      const [next, keys] = await this.#redis.scan(this.#cursor, 'MATCH', `${head}*:meta`, 'COUNT', 1000)
      for (const k of keys)
        if (this.#types.size < MAX_TYPES) this.#types.add(k.slice(head.length, -':meta'.length))
      this.#cursor = next
      if (next === '0') {
        this.#walking = false
        break
      }
    }
  }

  /** Counts per type and the last failures. */
  async read(now = Date.now()): Promise<{ types: JobTypeCounts[]; failures: JobFailure[] }> {
    await this.#discover(now)
    const [, { decodeReason, isCancelledReason }] = await this.#modules()
    const types = [...this.#types].sort()
    const rows = await Promise.all(
      types.map(async (type) => {
        const q = await this.#queue(type)
        const [c, failed] = await Promise.all([
          q.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed'),
          this.#redis.zrevrange(q.keys.failed, 0, MAX_FAILURES - 1, 'WITHSCORES'),
        ])
        return { c, failed, q, type }
      }),
    )
    const seen = new Set<string>()
    const missing: { type: string; id: string; q: Queue; score: number }[] = []
    for (const { failed, q, type } of rows) {
      for (let i = 0; i < failed.length; i += 2) {
        const key = `${type}\0${failed[i]}`
        seen.add(key)
        if (!this.#failures.has(key)) missing.push({ type, id: failed[i], q, score: Number(failed[i + 1]) })
      }
    }
    for (const key of this.#failures.keys()) if (!seen.has(key)) this.#failures.delete(key)
    if (missing.length > 0) {
      const pipe = this.#redis.pipeline()
      for (const m of missing)
        pipe.hmget(m.q.toKey(m.id), 'failedReason', 'attemptsMade', 'ats', 'finishedOn')
      const answers = (await pipe.exec()) ?? []
      missing.forEach((m, i) => {
        const [reason, made, started, finished] = (answers[i]?.[1] ?? []) as (string | null)[]
        const error = decodeReason(reason ?? undefined)
        this.#failures.set(`${m.type}\0${m.id}`, {
          type: m.type,
          id: m.id,
          code: error.code,
          message: error.message.slice(0, 300),
          failedAt: Number(finished) || m.score,
          attempts: Math.max(Number(made) || 0, Number(started) || 0),
          retryable: !isCancelledReason(reason ?? undefined),
        })
      })
    }
    return {
      types: rows.map(({ c, type }) => ({
        type,
        waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
        active: c.active ?? 0,
        delayed: c.delayed ?? 0,
        completed: c.completed ?? 0,
        failed: c.failed ?? 0,
      })),
      failures: [...this.#failures.values()].sort((a, b) => b.failedAt - a.failedAt).slice(0, MAX_FAILURES),
    }
  }

  /**
   * Retries failed job `id` of queue `type` once more (BullMQ `Job.retry('failed')`: back to wait, its
   * attempts kept counting). Its durable record is taken out of `db` first; without `db`, refused (503).
   */
  async retry(type: string, id: string, db: Pool | undefined): Promise<{ attempts: number; code: string }> {
    if (this.#redis.status !== 'ready') await connected(this.#redis, 2_000)
    if (this.#redis.status !== 'ready')
      throw new DashboardUnavailableError(
        `the store Redis is not connected (${this.#redis.status}); retry when it is back`,
      )
    const [{ Job }, { decodeReason, isCancelledReason }] = await this.#modules()
    const queue = await this.#queue(type)
    const job = await Job.fromId(queue, id)
    if (!job) throw new DashboardJobNotFoundError(type, id)
    const state = await job.getState()
    if (state !== 'failed') throw new DashboardJobNotFailedError(id, state)
    if (isCancelledReason(job.failedReason)) throw new DashboardJobNotFailedError(id, 'cancelled')
    const before = {
      attempts: Math.max(job.attemptsMade, job.attemptsStarted ?? 0),
      code: decodeReason(job.failedReason).code,
    }
    // Without PostgreSQL the job's failed record would stay, and the worker would replay the failure.
    if (!db)
      throw new DashboardUnavailableError(
        'this load balancer has no DATABASE_URL, so the failed record of the job in PostgreSQL cannot be cleared and a retry would replay the failure; give fleet lb DATABASE_URL (fleet up does)',
      )
    const record = await takeFailedRecord(db, id)
    try {
      await job.retry('failed')
    } catch (err) {
      if (record) await restoreRecord(db, record).catch(() => {})
      const msg = (err as Error).message
      if (/not in the failed state|Missing key/i.test(msg))
        throw new DashboardJobNotFailedError(id, 'no longer failed')
      throw err
    }
    this.#failures.delete(`${type}\0${id}`)
    return before
  }

  async close(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((q) => q.close().catch(() => {})))
    this.#queues.clear()
  }
}

/** Resolves once `redis` is ready, or after `ms`. */
export function connected(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      redis.off('ready', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    redis.once('ready', done)
  })
}

type RecordRow = Record<string, unknown>

/** Deletes job `id`'s `failed` record (if any) and returns it. A missing table means no durable jobs here. */
async function takeFailedRecord(db: Pool, id: string): Promise<RecordRow | undefined> {
  try {
    const { rows } = await db.query<RecordRow>(
      `DELETE FROM fleet_jobs WHERE id = $1 AND state = 'failed' RETURNING *`,
      [id],
    )
    return rows[0]
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return undefined // undefined_table: no migrations here
    throw new DashboardUnavailableError(
      `PostgreSQL, which holds the job's record, did not answer: ${(err as Error).message}`,
      { cause: err },
    )
  }
}

/** Puts a record taken by takeFailedRecord back (the retry was refused). */
async function restoreRecord(db: Pool, row: RecordRow): Promise<void> {
  const cols = Object.keys(row)
  await db.query(
    `INSERT INTO fleet_jobs (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})
     ON CONFLICT (id) DO NOTHING`,
    cols.map((c) =>
      typeof row[c] === 'object' && row[c] !== null && !(row[c] instanceof Date)
        ? JSON.stringify(row[c])
        : row[c],
    ),
  )
}
