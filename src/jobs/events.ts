/**
 * Job events for Server-Sent Events, read from BullMQ's own event stream of each queue
 * (`<prefix>:<type>:events`, a Redis stream that every worker appends to): any web server can follow any
 * job, and a stream entry id is a natural SSE `id`, so a client that reconnects with `Last-Event-ID` gets
 * exactly what it missed (while the stream still holds it). One hub per process reads every followed
 * stream over one blocking connection and hands entries to the followers of each job.
 */
import type { Redis } from '../redis/connect.js'
import { decodeReason, isCancelledReason } from './outcome.js'
import type { JobError } from './store.js'

export type JobState = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled'

/** One event as sent to clients. */
export interface JobEvent {
  /** Stream entry id (`<ms>-<seq>`), the SSE id. */
  id: string
  /** `queued`, `active`, `progress`, `completed`, `failed`, `cancelled`, or `state` for a snapshot. */
  kind: string
  data: { state?: JobState; progress?: unknown; result?: unknown; error?: JobError }
}

export const TERMINAL = new Set(['completed', 'failed', 'cancelled'])

/** Compares two stream ids (`ms-seq`). */
export function compareIds(a: string, b: string): number {
  const [am, as = '0'] = a.split('-')
  const [bm, bs = '0'] = b.split('-')
  const d = BigInt(am) - BigInt(bm)
  if (d !== 0n) return d < 0n ? -1 : 1
  const s = BigInt(as) - BigInt(bs)
  return s === 0n ? 0 : s < 0n ? -1 : 1
}

function parseJson(s: string | undefined): unknown {
  if (s === undefined) return undefined
  try {
    return JSON.parse(s)
  } catch {
    return s
  }
}

/** Turns a raw BullMQ stream entry into a client event (undefined for entries clients need not see). */
export function toJobEvent(id: string, fields: string[]): { jobId: string; event: JobEvent } | undefined {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1]
  const jobId = f.jobId
  if (!jobId) return undefined
  switch (f.event) {
    case 'added':
    case 'waiting':
    case 'delayed':
      return { jobId, event: { id, kind: 'queued', data: { state: 'queued' } } }
    case 'active':
      return { jobId, event: { id, kind: 'active', data: { state: 'active' } } }
    case 'progress':
      return {
        jobId,
        event: { id, kind: 'progress', data: { state: 'active', progress: parseJson(f.data) } },
      }
    case 'completed':
      return {
        jobId,
        event: { id, kind: 'completed', data: { state: 'completed', result: parseJson(f.returnvalue) } },
      }
    case 'failed': {
      const state = isCancelledReason(f.failedReason) ? 'cancelled' : 'failed'
      return { jobId, event: { id, kind: state, data: { state, error: decodeReason(f.failedReason) } } }
    }
    case 'removed':
      return {
        jobId,
        event: {
          id,
          kind: 'cancelled',
          data: {
            state: 'cancelled',
            error: { code: 'FLEET_E_JOBS_CANCELLED', message: 'the job was cancelled' },
          },
        },
      }
    default:
      return undefined
  }
}

type Listener = (event: JobEvent) => void

/** Reads the event streams that someone follows and calls the followers of each job. */
export class JobEventHub {
  readonly #redis: Redis
  readonly #blocking: Redis
  readonly #blockMs: number
  readonly #cursors = new Map<string, string>()
  readonly #followers = new Map<string, Map<string, Set<Listener>>>()
  #loop: Promise<void> | undefined
  #closed = false

  /** `redis` answers plain commands; `blocking` is a dedicated connection (it sits in XREAD BLOCK). */
  constructor(redis: Redis, blocking: Redis, options: { blockMs?: number } = {}) {
    this.#redis = redis
    this.#blocking = blocking
    this.#blockMs = options.blockMs ?? 1000
  }

  /** Entries of `key` after `after` (exclusive) for `jobId`, in order. */
  async replay(key: string, jobId: string, after: string): Promise<JobEvent[]> {
    const out: JobEvent[] = []
    let start = `(${after}`
    for (let page = 0; page < 100; page++) {
      const entries = (await this.#redis.xrange(key, start, '+', 'COUNT', 1000)) as [string, string[]][]
      for (const [id, fields] of entries) {
        const e = toJobEvent(id, fields)
        if (e && e.jobId === jobId) out.push(e.event)
      }
      if (entries.length < 1000) break
      start = `(${entries[entries.length - 1][0]}`
    }
    return out
  }

  /** The id of the newest entry of `key` ('0-0' when empty). */
  async lastId(key: string): Promise<string> {
    const last = (await this.#redis.xrevrange(key, '+', '-', 'COUNT', 1)) as [string, string[]][]
    return last[0]?.[0] ?? '0-0'
  }

  /**
   * Calls `listener` with every entry for `jobId` appended to `key` from now on; returns the unfollow
   * function. Resolves once the hub reads the stream from a fixed point, so nothing after it is missed.
   */
  async follow(key: string, jobId: string, listener: Listener): Promise<() => void> {
    if (!this.#cursors.has(key)) this.#cursors.set(key, await this.lastId(key))
    let jobs = this.#followers.get(key)
    if (!jobs) {
      jobs = new Map()
      this.#followers.set(key, jobs)
    }
    let set = jobs.get(jobId)
    if (!set) {
      set = new Set()
      jobs.set(jobId, set)
    }
    set.add(listener)
    this.#loop ??= this.#run().finally(() => {
      this.#loop = undefined
    })
    return () => {
      set.delete(listener)
      if (set.size === 0) jobs.delete(jobId)
      if (jobs.size === 0) {
        this.#followers.delete(key)
        this.#cursors.delete(key)
      }
    }
  }

  async #run(): Promise<void> {
    while (!this.#closed && this.#followers.size > 0) {
      const keys = [...this.#cursors.keys()]
      let res: [string, [string, string[]][]][] | null
      try {
        res = (await this.#blocking.xread(
          'COUNT',
          1000,
          'BLOCK',
          this.#blockMs,
          'STREAMS',
          ...keys,
          ...keys.map((k) => this.#cursors.get(k)!),
        )) as [string, [string, string[]][]][] | null
      } catch {
        if (this.#closed) return
        await new Promise((r) => setTimeout(r, 250))
        continue
      }
      for (const [key, entries] of res ?? []) {
        for (const [id, fields] of entries) {
          if (this.#cursors.has(key)) this.#cursors.set(key, id)
          const e = toJobEvent(id, fields)
          if (!e) continue
          for (const l of this.#followers.get(key)?.get(e.jobId) ?? []) l(e.event)
        }
      }
    }
  }

  /** Stops reading; followers get nothing more. */
  async close(): Promise<void> {
    this.#closed = true
    this.#followers.clear()
    this.#blocking.disconnect()
    await this.#loop
  }
}
