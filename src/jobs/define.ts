/**
 * A job type, declared once: its name, payload schema, processor and how it runs (concurrency, attempts,
 * backoff, timeout, CPU-heavy). Web servers use the declaration to validate and enqueue; workers use it to
 * run. Nothing here touches Redis.
 */
import type { Static, TSchema } from '@sinclair/typebox'
import type { Config } from '../config/index.js'
import type { Database, Queryable } from '../db/database.js'
import type { Logger } from '../log.js'
import type { AppConfig } from '../process/deps.js'
import { JobTypeInvalidError } from './errors.js'

/** What a processor gets for one attempt of one job. */
export interface JobContext<P> {
  /** The job's public id (`<type>-<uuid>`), also the key of its record in PostgreSQL. */
  readonly id: string
  readonly payload: P
  /** Who started the job (`user:<id>`, `system`). */
  readonly owner: string
  /** 1 for the first attempt. */
  readonly attempt: number
  /** Aborted on cancellation, timeout or worker shutdown; pass it on to long operations. */
  readonly signal: AbortSignal
  /** PostgreSQL through Fleet's database layer (writes invalidate the cache). */
  readonly db: Database
  /** For `appSettings(specs, ctx.config)`. */
  readonly config: AppConfig
  readonly logger: Logger
  /** Reports progress (a number 0-100 or a small object); streamed to clients as `progress` events. */
  progress(value: number | Record<string, unknown>): Promise<void>
  /**
   * Runs the type's `cpu` function on a worker thread (the event loop stays free for lock renewal and
   * health checks); rejects with the abort reason when `signal` aborts. Throws if the type declares no `cpu`.
   */
  cpu<I, O>(input: I, transferList?: readonly ArrayBuffer[]): Promise<O>
}

/** Where a CPU-heavy function lives: a module the worker threads import, and its export. */
export interface CpuFunction {
  /** `new URL('./thumbnails-cpu.js', import.meta.url)`; the `.js` is mapped to `.ts` in development. */
  readonly module: URL
  readonly export: string
}

export interface JobTypeOptions<S extends TSchema, O, R> {
  /** Unique name, also the queue name: lower-case letters, digits and dots (`hello.shout`). */
  readonly name: string
  /** TypeBox schema of the payload; submissions that do not match are refused with 400. */
  readonly payload: S
  /** Does the work of one attempt; may run more than once for one job (retries, a dead worker). */
  process(ctx: JobContext<Static<S>>): Promise<O>
  /**
   * Applies the job's effects exactly once: it runs in the transaction that records the job completed in
   * PostgreSQL, and a second run of the same job finds the record and skips it. Returns the job's result
   * (JSON); without it the processor's output is the result.
   */
  commit?(tx: Queryable, output: O, ctx: JobContext<Static<S>>): Promise<R>
  /**
   * Runs after the job's completion was committed (only on the run that applied it), e.g. to warm a cache;
   * best effort (an error here is logged; the job stays completed).
   */
  completed?(result: R, ctx: JobContext<Static<S>>): Promise<void>
  /**
   * Runs when the job ends failed or cancelled (after its last attempt), e.g. to mark what it was working
   * on; best effort (an error here is logged, not retried).
   */
  failed?(db: Database, error: { code: string; message: string }, ctx: JobContext<Static<S>>): Promise<void>
  /** Off-main-thread code the processor calls through `ctx.cpu()`; declaring it marks the type CPU-heavy. */
  readonly cpu?: CpuFunction
  /** Jobs of this type one worker runs at once (default FLEET_WORKER_CONCURRENCY). */
  readonly concurrency?: number
  /** Attempts before the job ends failed (default FLEET_JOB_ATTEMPTS). */
  readonly attempts?: number
  /** First retry delay in ms, doubled per attempt with up to 50% jitter (default FLEET_JOB_BACKOFF). */
  readonly backoff?: number
  /** Longest one attempt may run, in ms (default FLEET_JOB_TIMEOUT). */
  readonly timeout?: number
  /** Record the outcome in PostgreSQL (default true); `false` for fire-and-forget jobs with no owner. */
  readonly durable?: boolean
  /** Run on a schedule too (a BullMQ job scheduler that workers keep up to date); cron `off` removes it. */
  readonly schedule?: { readonly cron: (config: AppConfig) => string; readonly payload: Static<S> }
}

/** A declared job type (what `defineJob` returns). */
export interface JobType<S extends TSchema = TSchema, O = unknown, R = unknown>
  extends JobTypeOptions<S, O, R> {
  readonly durable: boolean
}

/** A job type of any payload, for lists of them. */
// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list of job types needs an open output type
export type AnyJobType = JobType<TSchema, any, any>

const NAME = /^[a-z][a-z0-9]*(\.[a-z0-9]+)*$/

/**
 * Declares a job type.
 * @example
 * export const resize = defineJob({
 *   name: 'media.resize',
 *   payload: Type.Object({ productId: Type.Integer() }),
 *   attempts: 5,
 *   process: async (ctx) => render(ctx.payload.productId, ctx.signal),
 *   commit: async (tx, images, ctx) => saveImages(tx, ctx.payload.productId, images),
 * })
 */
export function defineJob<S extends TSchema, O, R = O>(options: JobTypeOptions<S, O, R>): JobType<S, O, R> {
  if (!NAME.test(options.name) || options.name.length > 64) {
    throw new JobTypeInvalidError(
      `job type name ${JSON.stringify(options.name)} must be lower-case letters, digits and dots (at most 64)`,
    )
  }
  for (const k of ['concurrency', 'attempts'] as const) {
    const v = options[k]
    if (v !== undefined && (!Number.isInteger(v) || v < 1))
      throw new JobTypeInvalidError(`job type ${options.name}: ${k} must be a whole number of at least 1`)
  }
  for (const k of ['backoff', 'timeout'] as const) {
    const v = options[k]
    if (v !== undefined && (!Number.isFinite(v) || v < 0))
      throw new JobTypeInvalidError(`job type ${options.name}: ${k} must be a number of milliseconds`)
  }
  const type = Object.freeze({ ...options, durable: options.durable ?? true })
  declared.set(type.name, type as AnyJobType)
  return type
}

const declared = new Map<string, AnyJobType>()

/** The type declared (by `defineJob`, in this process) under `name`. */
export function declaredJobType(name: string): AnyJobType | undefined {
  return declared.get(name)
}

/** The resolved run options of a type (its own, else the configured defaults). */
export function runOptions(
  type: AnyJobType,
  config: Pick<Config, 'workerConcurrency' | 'jobAttempts' | 'jobBackoff' | 'jobTimeout'>,
): { concurrency: number; attempts: number; backoff: number; timeout: number } {
  return {
    concurrency: type.concurrency ?? config.workerConcurrency,
    attempts: type.attempts ?? config.jobAttempts,
    backoff: type.backoff ?? config.jobBackoff,
    timeout: type.timeout ?? config.jobTimeout,
  }
}

/** Splits a public job id into its type name; undefined when it is not one. */
export function typeOfJobId(id: string): string | undefined {
  const m = /^([a-z][a-z0-9.]{0,63})-([0-9a-f]{32}|[0-9a-f-]{36})$/.exec(id)
  return m?.[1]
}
