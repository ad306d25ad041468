/**
 * Runs jobs: one BullMQ Worker per job type, each attempt wrapped so that it can be cancelled, timed out
 * and handed back, its effects recorded once in PostgreSQL, and its outcome counted. `stop()` stops taking
 * jobs, lets the active ones finish within a bound, then hands the rest back to the queue for another worker.
 */
import { type Job, UnrecoverableError, WaitingError, Worker } from 'bullmq'
import type { Registry as MetricsRegistry } from 'prom-client'
import { ConfigMissingError } from '../config/errors.js'
import type { Config } from '../config/index.js'
import type { Database } from '../db/database.js'
import type { Logger } from '../log.js'
import type { Redis } from '../redis/connect.js'
import { Attempt, type AttemptDeps, Lane } from './attempt.js'
import type { CpuPool } from './cpu-pool.js'
import { type AnyJobType, runOptions } from './define.js'
import { JobCancelledError, JobPermanentError } from './errors.js'
import { MAX_STALLED_COUNT } from './handoff.js'
import { JobMetrics, type Outcome } from './metrics.js'
import { encodeReason, executions, toJobError } from './outcome.js'
import { bullPrefix, cancelChannel, connectQueueRedis, QueueSet } from './queues.js'
import { JobStore, type RecordInput } from './store.js'

/** What BullMQ stores as a Fleet job's data. */
export interface JobData {
  payload: unknown
  owner: string
  /** Hash of the payload, when an Idempotency-Key named the job. */
  hash?: string
}

export interface RunnerDeps {
  config: Config
  logger: Logger
  db: Database
  metrics: MetricsRegistry
  /** This process's id; recorded on each job it takes (`processedBy`). */
  instanceId: string
  /** Runs CPU-heavy code off the main thread; required when a type declares `cpu`. */
  cpu?: CpuPool
}

class HandBack extends Error {}

/** The Redis key that marks a job cancelled (read when an attempt starts, in case the message was missed). */
export function cancelKey(config: Pick<Config, 'redisPrefix'>, id: string): string {
  return `${config.redisPrefix}{jobs}:cancelled:${id}`
}

export class JobRunner {
  readonly #types: readonly AnyJobType[]
  readonly #deps: RunnerDeps
  readonly #redis: Redis
  readonly #sub: Redis
  readonly #queues: QueueSet
  readonly #store: JobStore
  readonly #metrics: JobMetrics
  readonly #workers: Worker<JobData>[] = []
  /** One per type: its active attempts (for cancellation, timeouts and hand-back). */
  readonly #lanes: Lane[]
  readonly #attemptDeps: AttemptDeps
  readonly #recentCancels = new Map<string, number>()
  #sweep: NodeJS.Timeout | undefined
  #closing = false

  constructor(types: readonly AnyJobType[], deps: RunnerDeps) {
    this.#types = types
    this.#deps = deps
    const url = deps.config.redisUrl
    if (!url)
      throw new ConfigMissingError(
        'REDIS_URL',
        'workers read their queues from the store Redis: set redis://...',
      )
    const onError = (err: Error) => deps.logger.debug({ err }, 'store Redis connection error')
    this.#redis = connectQueueRedis(url, `${deps.config.instanceId ?? 'worker'}:jobs`, onError)
    this.#sub = connectQueueRedis(url, `${deps.config.instanceId ?? 'worker'}:jobs-cancel`, onError)
    this.#queues = new QueueSet(deps.config, this.#redis)
    this.#store = new JobStore(deps.db)
    this.#metrics = new JobMetrics(
      deps.metrics,
      this.#queues,
      types.map((t) => t.name),
    )
    this.#lanes = types.map((t) => new Lane(t, runOptions(t, deps.config)))
    this.#attemptDeps = {
      config: deps.config,
      logger: deps.logger,
      db: deps.db,
      redis: this.#redis,
      cpu: deps.cpu,
    }
  }

  /** The queues this runner works on (for schedulers and stats). */
  get queues(): QueueSet {
    return this.#queues
  }

  /** Attempts running now. */
  get activeCount(): number {
    let n = 0
    for (const lane of this.#lanes) n += lane.active.size
    return n
  }

  /** The attempt of job `id` running here, if any. */
  #activeAttempt(id: string): Attempt | undefined {
    for (const lane of this.#lanes) {
      const a = lane.active.get(id)
      if (a) return a
    }
    return undefined
  }

  /** True while connected to the store Redis and taking jobs. */
  get ready(): boolean {
    return !this.#closing && this.#redis.status === 'ready' && this.#workers.every((w) => w.isRunning())
  }

  /** Starts one BullMQ Worker per type and listens for cancellations; resolves once they are connected. */
  async start(): Promise<void> {
    const { config, logger } = this.#deps
    const deps = this.#deps
    this.#sub.on('message', (_channel: string, id: string) => {
      const active = this.#activeAttempt(id)
      if (active) return active.abort(new JobCancelledError())
      // Not running here (yet): remember it briefly, in case this worker is about to start it.
      this.#recentCancels.set(id, Date.now())
      for (const [old, at] of this.#recentCancels) {
        if (Date.now() - at < 60_000 && this.#recentCancels.size <= 10_000) break
        this.#recentCancels.delete(old)
      }
    })
    await this.#sub.subscribe(cancelChannel(config))
    // A message can be lost (the subscriber reconnecting): the markers of the active jobs are also read
    // once a second, in one round trip, so a cancellation lands within about a second regardless.
    this.#sweep = setInterval(() => void this.#sweepCancels(), 1_000)
    this.#sweep.unref()
    for (const lane of this.#lanes) {
      const { type } = lane
      if (type.cpu && !this.#deps.cpu) throw new Error(`${type.name} is CPU-heavy but no CPU pool was given`)
      const worker = new Worker<JobData>(type.name, (job, token) => this.#attempt(lane, job, token), {
        connection: this.#redis,
        name: deps.instanceId,
        prefix: bullPrefix(config),
        concurrency: lane.run.concurrency,
        lockDuration: config.jobLockDuration,
        stalledInterval: config.jobStalledInterval,
        maxStalledCount: MAX_STALLED_COUNT,
        autorun: false,
        skipVersionCheck: true,
      })
      worker.on('error', (err) => logger.warn({ err, type: type.name }, 'job worker error (it retries)'))
      worker.on('failed', (job, err) => {
        // A job that stalled too often is failed by BullMQ without our wrapper: record it too.
        if (job && !lane.active.has(job.id ?? '') && /stalled/i.test(err.message)) {
          void this.#recordEnd(type, job, 'failed', toJobError(err)).catch(() => {})
        }
      })
      this.#workers.push(worker)
      void worker.run().catch((err: Error) => logger.error({ err, type: type.name }, 'job worker stopped'))
    }
    await Promise.all(this.#workers.map((w) => w.waitUntilReady()))
    logger.info({ types: this.#types.map((t) => t.name) }, 'taking jobs')
  }

  /**
   * Stops taking jobs; waits up to `timeoutMs` for active attempts, then hands the rest back to the queue
   * (another worker starts them again at once); closes every connection.
   */
  async stop(timeoutMs: number): Promise<{ handedBack: number }> {
    this.#closing = true
    clearInterval(this.#sweep)
    const closing = Promise.all(this.#workers.map((w) => w.close()))
    let handedBack = 0
    const timer = setTimeout(() => {
      handedBack = this.activeCount
      for (const lane of this.#lanes) {
        for (const a of lane.active.values()) a.abort(new HandBack('worker shutting down'))
      }
    }, timeoutMs)
    await closing
    clearTimeout(timer)
    for (const lane of this.#lanes) lane.close()
    await this.#queues.close()
    this.#sub.disconnect()
    await this.#redis.quit().catch(() => this.#redis.disconnect())
    return { handedBack }
  }

  async #sweepCancels(): Promise<void> {
    const active = this.#lanes.flatMap((lane) => [...lane.active.values()])
    if (active.length === 0 || this.#redis.status !== 'ready') return
    const marks = await this.#redis
      .mget(active.map((a) => cancelKey(this.#deps.config, a.id)))
      .catch(() => [])
    marks.forEach((m, i) => {
      if (m) active[i].abort(new JobCancelledError())
    })
  }

  async #attempt(lane: Lane, job: Job<JobData>, token: string | undefined): Promise<unknown> {
    const { type } = lane
    const { logger, db } = this.#deps
    const ctx = new Attempt(lane, job, this.#attemptDeps)
    const { id } = ctx
    lane.add(ctx)
    let outcome: Outcome = 'failed'
    try {
      if (this.#recentCancels.has(id)) throw new JobCancelledError()
      if (type.durable) {
        // The marker covers a cancel message this worker missed (e.g. while reconnecting); durable types
        // read it beside their record, so it costs no extra wait.
        const [marked, done] = await Promise.all([
          this.#redis.exists(cancelKey(this.#deps.config, id)),
          this.#store.get(id),
        ])
        if (done) return this.#replay(done.state, done.result, done.error)
        if (marked) throw new JobCancelledError()
      }
      const output = await ctx.run()
      if (ctx.aborted) throw ctx.reason
      let result: unknown
      if (type.durable) {
        const c = await this.#store.complete(recordOf(type, job, ctx), (tx) =>
          type.commit ? type.commit(tx, output, ctx) : Promise.resolve(output),
        )
        result = c.applied ? c.result : this.#replay(c.record.state, c.record.result, c.record.error)
        if (c.applied && type.completed) {
          await type
            .completed(c.result, ctx)
            .catch((e: unknown) => logger.warn({ err: e, job: id }, 'completed hook threw'))
        }
      } else {
        result = type.commit ? await db.transaction((tx) => type.commit!(tx, output, ctx)) : output
      }
      outcome = 'completed'
      return result
    } catch (thrown) {
      const err: unknown = ctx.aborted ? ctx.reason : thrown
      if (err instanceof HandBack) {
        outcome = 'handed_back'
        await job.moveToWait(token)
        throw new WaitingError()
      }
      if (err instanceof UnrecoverableError) throw err
      const coded = toJobError(err)
      const cancelled = err instanceof JobCancelledError
      const final = cancelled || err instanceof JobPermanentError || ctx.attempt >= lane.run.attempts
      outcome = cancelled ? 'cancelled' : final ? 'failed' : 'retried'
      if (final) {
        await this.#recordEnd(type, job, cancelled ? 'cancelled' : 'failed', coded, ctx)
        await type
          .failed?.(db, coded, ctx)
          .catch((e: unknown) => logger.warn({ err: e, job: id }, 'failed hook threw'))
        throw new UnrecoverableError(encodeReason(coded))
      }
      logger.info({ job: id, attempt: ctx.attempt, err: coded }, 'job attempt failed; it will be retried')
      throw new Error(encodeReason(coded))
    } finally {
      lane.delete(ctx)
      this.#metrics.observe(type.name, outcome, (performance.now() - ctx.started) / 1000)
    }
  }

  /** A job whose record exists ran before: complete with its result, or end as it ended. */
  #replay(state: string, result: unknown, error: { code: string; message: string } | null): unknown {
    if (state === 'completed') return result
    throw new UnrecoverableError(encodeReason(error ?? { code: 'FLEET_E_JOBS_FAILED', message: state }))
  }

  async #recordEnd(
    type: AnyJobType,
    job: Job<JobData>,
    state: 'failed' | 'cancelled',
    error: { code: string; message: string },
    attempt?: Attempt,
  ): Promise<void> {
    if (!type.durable) return
    await this.#store.end(recordOf(type, job, attempt), state, error)
  }
}

/** The PostgreSQL record of a job, as of `attempt` (or, without one, as BullMQ last left it). */
function recordOf(type: AnyJobType, job: Job<JobData>, attempt?: Attempt): RecordInput {
  return {
    id: job.id ?? '',
    type: type.name,
    owner: job.data.owner,
    hash: job.data.hash,
    attempts: attempt ? attempt.attempt : executions(job, false),
    createdAt: job.timestamp,
    startedAt:
      job.processedOn ?? (attempt ? Math.round(performance.timeOrigin + attempt.started) : undefined),
  }
}
