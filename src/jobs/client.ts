/**
 * What a web server does with jobs: submit one (validated, optionally idempotent), read its view (from
 * Redis while BullMQ holds it, from PostgreSQL after), and cancel it. Every read is scoped to the owner:
 * another user's job is reported as not found.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Value } from '@sinclair/typebox/value'
import { Job, type JobsOptions, type Queue } from 'bullmq'
import type { Config } from '../config/index.js'
import type { Database } from '../db/database.js'
import { acknowledged, durableConnection } from '../redis/acknowledged.js'
import type { Redis } from '../redis/connect.js'
import { type AnyJobType, declaredJobType, type JobType, typeOfJobId } from './define.js'
import {
  IdempotencyConflictError,
  IdempotencyKeyInvalidError,
  JobFinishedError,
  JobNotFoundError,
  JobPayloadInvalidError,
  JobsUnavailableError,
} from './errors.js'
import type { JobState } from './events.js'
import { decodeReason, executions, isCancelledReason } from './outcome.js'
import { cancelChannel, jobOptions, QueueSet } from './queues.js'
import { cancelKey, type JobData } from './runner.js'
import { type JobError, type JobRecord, JobStore } from './store.js'

/** A job as `GET /api/jobs/:id` shows it. */
export interface JobView {
  id: string
  type: string
  state: JobState
  progress: unknown
  attempts: number
  createdAt: string
  startedAt: string | null
  finishedAt: string | null
  result?: unknown
  error?: JobError
  /** True after DELETE on an active job, until the worker stops it. */
  cancelRequested?: boolean
}

/**
 * ioredis errors that mean the store Redis is unreachable, or is a primary that may not take writes now
 * (a failover under way, too few replicas for `min-replicas-to-write`): answered as 503.
 */
const CONNECTION_LOST =
  /Connection is closed|ECONNREFUSED|max retries|Stream isn't writeable|Command timed out|All sentinels are unreachable|^(NOREPLICAS|READONLY|LOADING|MASTERDOWN)\b/i

/** Payload checkers, compiled once per schema (Value.Check interprets the schema on every call). */
const checkers = new WeakMap<TSchema, (value: unknown) => boolean>()

function checkerOf(schema: TSchema): (value: unknown) => boolean {
  let check = checkers.get(schema)
  if (!check) {
    try {
      const compiled = TypeCompiler.Compile(schema)
      check = (value) => compiled.Check(value)
    } catch {
      check = (value) => Value.Check(schema, value) // a kind the compiler does not know
    }
    checkers.set(schema, check)
  }
  return check
}

const iso = (ms: number | undefined | null) => (ms ? new Date(ms).toISOString() : null)

function fromRecord(r: JobRecord): JobView {
  return {
    id: r.id,
    type: r.type,
    state: r.state,
    progress: r.state === 'completed' ? 100 : null,
    attempts: r.attempts,
    createdAt: r.createdAt.toISOString(),
    startedAt: r.startedAt?.toISOString() ?? null,
    finishedAt: r.finishedAt.toISOString(),
    ...(r.state === 'completed' ? { result: r.result } : { error: r.error ?? undefined }),
  }
}

async function fromJob(read: Job<JobData>, queue: Queue): Promise<JobView> {
  const raw = await read.getState()
  // The data was read before the state: a job that ended in between is read again, whole.
  const job =
    (raw === 'completed' || raw === 'failed') && !read.finishedOn
      ? ((await Job.fromId<JobData>(queue, read.id ?? '')) ?? read)
      : read
  const base = {
    id: job.id ?? '',
    type: job.name,
    progress: job.progress ?? null,
    attempts: executions(job, raw === 'active'),
    createdAt: new Date(job.timestamp).toISOString(),
    startedAt: iso(job.processedOn),
    finishedAt: iso(job.finishedOn),
  }
  if (raw === 'completed') return { ...base, state: 'completed', progress: 100, result: job.returnvalue }
  if (raw === 'failed') {
    const state = isCancelledReason(job.failedReason) ? 'cancelled' : 'failed'
    return { ...base, state, error: decodeReason(job.failedReason) }
  }
  return { ...base, state: raw === 'active' ? 'active' : 'queued' }
}

/** Who asks about a job: one owner, or the identities of one client (its user, its visitor id). */
export type Owner = string | readonly string[]

function owns(owner: Owner, of: string): boolean {
  return typeof owner === 'string' ? owner === of : owner.includes(of)
}

export interface SubmitOptions {
  /** `Idempotency-Key`: the same key from the same owner returns the same job. */
  idempotencyKey?: string
}

export class JobClient {
  readonly #config: Config
  readonly #redis: Redis
  readonly #queues: QueueSet
  /** The queues that submissions go through: over the store's connection for acknowledged writes. */
  readonly #submitQueues: QueueSet
  readonly #store: JobStore
  readonly #timeoutMs: number
  /** BullMQ options per type, resolved once (they follow from the declaration and the config). */
  readonly #options = new WeakMap<AnyJobType, JobsOptions>()

  constructor(deps: { config: Config; redis: Redis; db: Database }, options: { timeoutMs?: number } = {}) {
    this.#config = deps.config
    this.#redis = deps.redis
    this.#queues = new QueueSet(deps.config, deps.redis)
    const durable = durableConnection(deps.redis)
    this.#submitQueues = durable === deps.redis ? this.#queues : new QueueSet(deps.config, durable)
    this.#store = new JobStore(deps.db)
    this.#timeoutMs = options.timeoutMs ?? 5_000
  }

  get queues(): QueueSet {
    return this.#queues
  }

  /** The Redis stream that carries the events of `type`'s jobs. */
  eventsKey(type: string): string {
    return this.#queues.get(type).keys.events
  }

  /**
   * Validates and enqueues a job of `type` for `owner`; returns its view (`queued`, or the existing job's
   * state when the idempotency key was used before).
   */
  async submit<S extends TSchema>(
    type: JobType<S>,
    payload: unknown,
    owner: string,
    options: SubmitOptions = {},
  ): Promise<JobView> {
    if (!checkerOf(type.payload)(payload)) {
      const problems = [...Value.Errors(type.payload, payload)]
        .slice(0, 10)
        .map((e) => ({ path: e.path, message: e.message }))
      throw new JobPayloadInvalidError(type.name, problems)
    }
    const key = options.idempotencyKey
    if (key !== undefined && !/^[\x21-\x7e]{1,200}$/.test(key)) throw new IdempotencyKeyInvalidError()
    const id = key
      ? `${type.name}-${createHash('sha256').update(`${owner}\0${type.name}\0${key}`).digest('hex').slice(0, 32)}`
      : `${type.name}-${randomUUID().replace(/-/g, '')}`
    const hash = key ? createHash('sha256').update(JSON.stringify(payload)).digest('hex') : undefined
    if (key) {
      const done = await this.#store.get(id)
      if (done && done.hash !== hash) throw new IdempotencyConflictError(id)
      if (done) return fromRecord(done)
    }
    const data: JobData = hash ? { payload, owner, hash } : { payload, owner }
    const queue = this.#queues.get(type as AnyJobType)
    let opts = this.#options.get(type as AnyJobType)
    if (!opts) {
      opts = jobOptions(type as AnyJobType, this.#config)
      this.#options.set(type as AnyJobType, opts)
    }
    // Acknowledged (202) only once the store's replicas have it (FLEET_STORE_WAIT_REPLICAS): the add runs
    // on the connection that `acknowledged` then WAITs on.
    const submitQueue = this.#submitQueues.get(type as AnyJobType)
    const add = { ...opts, jobId: id }
    await this.#bounded(acknowledged(this.#redis, () => submitQueue.add(type.name, data, add)))
    if (!key) {
      const now = new Date().toISOString()
      return {
        id,
        type: type.name,
        state: 'queued',
        progress: null,
        attempts: 0,
        createdAt: now,
        startedAt: null,
        finishedAt: null,
      }
    }
    const existing = await this.#bounded(Job.fromId<JobData>(queue, id))
    if (!existing) {
      const done = await this.#store.get(id)
      if (done) return fromRecord(done)
      throw new JobNotFoundError(id)
    }
    if (existing.data.hash !== hash) throw new IdempotencyConflictError(id)
    return fromJob(existing, queue)
  }

  /**
   * The view of job `id` for `owner` (or any of several identities of one client, e.g. its user and its
   * visitor id); JobNotFoundError when it does not exist or is someone else's.
   */
  async get(id: string, owner: Owner): Promise<JobView> {
    const found = await this.#find(id, owner)
    if (found.job) return fromJob(found.job, this.#queues.get(found.job.name))
    return fromRecord(found.record)
  }

  /**
   * Cancels job `id` of `owner`: a queued job is removed at once (`cancelled`); an active one is told to
   * stop (its view has `cancelRequested: true` until the worker ends it as `cancelled`).
   */
  async cancel(id: string, owner: Owner): Promise<JobView> {
    const found = await this.#find(id, owner)
    if (!found.job) throw new JobFinishedError(id, found.record.state)
    const job = found.job
    const view = await fromJob(job, this.#queues.get(job.name))
    if (view.state === 'completed' || view.state === 'failed' || view.state === 'cancelled') {
      throw new JobFinishedError(id, view.state)
    }
    const ttl = Math.ceil(this.#config.jobRetentionAge / 1000)
    await this.#bounded(this.#redis.set(cancelKey(this.#config, id), '1', 'EX', ttl))
    if (view.state === 'queued') {
      const removed = await job.remove().then(
        () => true,
        () => false, // locked: a worker took it meanwhile; stop it like an active one
      )
      if (removed) {
        const error = { code: 'FLEET_E_JOBS_CANCELLED', message: 'the job was cancelled' }
        await this.#store.end(
          {
            id,
            type: job.name,
            owner: job.data.owner,
            hash: job.data.hash,
            attempts: executions(job, false),
            createdAt: job.timestamp,
          },
          'cancelled',
          error,
        )
        return { ...view, state: 'cancelled', finishedAt: new Date().toISOString(), error }
      }
    }
    await this.#bounded(this.#redis.publish(cancelChannel(this.#config), id))
    return { ...view, state: 'active', cancelRequested: true }
  }

  async #find(
    id: string,
    owner: Owner,
  ): Promise<{ job: Job<JobData>; record?: undefined } | { job?: undefined; record: JobRecord }> {
    const typeName = typeOfJobId(id)
    if (!typeName) throw new JobNotFoundError(id)
    if (declaredJobType(typeName)) {
      const job = await this.#bounded(Job.fromId<JobData>(this.#queues.get(typeName), id))
      if (job) {
        if (!owns(owner, job.data.owner)) throw new JobNotFoundError(id)
        return { job }
      }
    }
    const record = await this.#store.get(id)
    if (!record || !owns(owner, record.owner)) throw new JobNotFoundError(id)
    return { record }
  }

  /** Redis calls that would wait for a reconnect answer 503 after the bound instead. */
  #bounded<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new JobsUnavailableError()), this.#timeoutMs)
      p.then(
        (v) => {
          clearTimeout(timer)
          resolve(v)
        },
        (err: unknown) => {
          clearTimeout(timer)
          reject(
            CONNECTION_LOST.test((err as Error)?.message ?? '')
              ? new JobsUnavailableError({ cause: err })
              : err,
          )
        },
      )
    })
  }

  async close(): Promise<void> {
    if (this.#submitQueues !== this.#queues) await this.#submitQueues.close()
    await this.#queues.close()
  }
}
