/**
 * One attempt of one job as a worker runs it: the context its processor gets, and how it is stopped
 * (cancelled, timed out or handed back). Attempts of one type are kept in a Lane, in start order, so that
 * one timer serves all their timeouts. Both are built for the common case, a short job that is never
 * stopped: the AbortSignal is made only when the processor reads it, and nothing is armed per attempt.
 */
import type { Job } from 'bullmq'
import type { Config } from '../config/index.js'
import type { Database } from '../db/database.js'
import type { Logger } from '../log.js'
import type { Redis } from '../redis/connect.js'
import type { CpuPool } from './cpu-pool.js'
import type { AnyJobType, JobContext } from './define.js'
import { JobTimeoutError } from './errors.js'
import { executions } from './outcome.js'
import type { JobData } from './runner.js'

/** setTimeout's longest delay (a longer one fires at once); a longer timeout is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** What every attempt of a runner shares. */
export interface AttemptDeps {
  config: Config
  logger: Logger
  db: Database
  redis: Redis
  cpu?: CpuPool
}

/** A job type as one runner runs it: its resolved options and its active attempts, oldest first. */
export class Lane {
  readonly active = new Map<string, Attempt>()
  #timer: NodeJS.Timeout | undefined

  constructor(
    readonly type: AnyJobType,
    readonly run: { readonly concurrency: number; readonly attempts: number; readonly timeout: number },
  ) {}

  /** Tracks `a` until `delete(a)`; aborts it with JobTimeoutError once it has run for the type's timeout. */
  add(a: Attempt): void {
    // A job taken again while a stale attempt of it still runs here: the new one is the one to track.
    this.active.delete(a.id)
    this.active.set(a.id, a)
    if (!this.#timer) this.#arm(a.deadline)
  }

  delete(a: Attempt): void {
    if (this.active.get(a.id) === a) this.active.delete(a.id)
  }

  /** Stops the timeout timer (the runner is closing). */
  close(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  // Every attempt of a lane has the same timeout, so start order is deadline order: the timer waits for the
  // oldest attempt only. One that ended meanwhile is simply gone when the timer fires, which then waits for
  // the new oldest: a timer per timeout period, not a timer per attempt.
  #arm(deadline: number): void {
    const ms = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(deadline - performance.now())))
    this.#timer = setTimeout(() => this.#expire(), ms)
    this.#timer.unref()
  }

  #expire(): void {
    this.#timer = undefined
    const now = performance.now()
    for (const a of this.active.values()) {
      if (a.deadline > now) {
        this.#arm(a.deadline)
        return
      }
      a.abort(new JobTimeoutError(this.type.name, this.run.timeout))
    }
  }
}

/** One attempt: the processor's context (JobContext) and the runner's handle to stop it. */
export class Attempt implements JobContext<unknown> {
  readonly id: string
  readonly payload: unknown
  readonly owner: string
  readonly attempt: number
  readonly db: Database
  readonly redis: Redis
  readonly config: Config
  /** performance.now() at the start, and when the attempt times out. */
  readonly started: number
  readonly deadline: number
  readonly #job: Job<JobData>
  readonly #lane: Lane
  readonly #deps: AttemptDeps
  #aborted = false
  #reason: unknown
  #controller: AbortController | undefined
  #reject: ((reason: unknown) => void) | undefined
  #logger: Logger | undefined

  constructor(lane: Lane, job: Job<JobData>, deps: AttemptDeps) {
    this.id = job.id ?? ''
    this.payload = job.data.payload
    this.owner = job.data.owner
    this.attempt = executions(job, true) // stalled runs count: a job whose worker died is on its 2nd
    this.db = deps.db
    this.redis = deps.redis
    this.config = deps.config
    this.started = performance.now()
    this.deadline = this.started + lane.run.timeout
    this.#job = job
    this.#lane = lane
    this.#deps = deps
  }

  /** Aborted on cancellation, timeout or hand-back (made on first use: most processors never read it). */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController()
      if (this.#aborted) this.#controller.abort(this.#reason)
    }
    return this.#controller.signal
  }

  get logger(): Logger {
    this.#logger ??= this.#deps.logger.child({ job: this.id }) // made on first use: most attempts never log
    return this.#logger
  }

  progress(value: number | Record<string, unknown>): Promise<void> {
    return this.#job.updateProgress(value)
  }

  cpu<I, O>(input: I, transferList?: readonly ArrayBuffer[]): Promise<O> {
    const { type } = this.#lane
    const pool = this.#deps.cpu
    if (!type.cpu || !pool) return Promise.reject(new Error(`${type.name} declares no cpu function`))
    return pool.run<O>(type.cpu, input, {
      signal: this.signal,
      transferList,
      onProgress: (p) => void this.#job.updateProgress(p as number).catch(() => {}),
    })
  }

  /** True once stopped; `reason` is why (JobCancelledError, JobTimeoutError, or the runner's hand-back). */
  get aborted(): boolean {
    return this.#aborted
  }

  get reason(): unknown {
    return this.#reason
  }

  /** Stops the attempt (the first reason wins): aborts `signal` and rejects `run()` at once. */
  abort(reason: unknown): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    this.#controller?.abort(reason)
    this.#reject?.(reason)
  }

  /**
   * Runs the type's processor on this context: resolves with its output, or rejects with the abort reason as
   * soon as the attempt is stopped (the processor, told through `signal`, may still be running then).
   */
  run(): Promise<unknown> {
    if (this.#aborted) return Promise.reject(this.#reason)
    return new Promise((resolve, reject) => {
      this.#reject = reject
      this.#lane.type.process(this).then(resolve, reject)
    })
  }
}
