/**
 * Where the queues live: one BullMQ queue per job type, in the store Redis, under the configured key prefix
 * (`<FLEET_REDIS_PREFIX>{jobs}:<type>:...`; the hash tag keeps every queue key on one Cluster slot, as
 * BullMQ's scripts need). Also the job options that follow from a type's declaration.
 */
import { type JobsOptions, Queue } from 'bullmq'
import type { Config } from '../config/index.js'
import { connectRedis, type Redis } from '../redis/connect.js'
import { type AnyJobType, runOptions } from './define.js'

/** The BullMQ `prefix` of a deployment. */
export function bullPrefix(config: Pick<Config, 'redisPrefix'>): string {
  return `${config.redisPrefix}{jobs}`
}

/** The pub/sub channel on which web servers ask workers to stop an active job. */
export function cancelChannel(config: Pick<Config, 'redisPrefix'>): string {
  return `${config.redisPrefix}{jobs}:cancel`
}

/** A connection for BullMQ: reconnects forever and never fails a command for being disconnected. */
export function connectQueueRedis(url: string, name: string, onError?: (err: Error) => void): Redis {
  return connectRedis(url, { name, extra: { maxRetriesPerRequest: null }, onError })
}

/** BullMQ job options of a type: attempts, exponential backoff with jitter, retention. */
export function jobOptions(type: AnyJobType, config: Config): JobsOptions {
  const run = runOptions(type, config)
  const keep = { age: Math.ceil(config.jobRetentionAge / 1000), count: config.jobRetentionCount }
  return {
    attempts: run.attempts,
    backoff: { type: 'exponential', delay: run.backoff, jitter: 0.5 },
    removeOnComplete: keep,
    removeOnFail: keep,
  }
}

/** The queues of a set of job types over one shared connection, created on first use. */
export class QueueSet {
  readonly #config: Config
  readonly #redis: Redis
  readonly #queues = new Map<string, Queue>()

  constructor(config: Config, redis: Redis) {
    this.#config = config
    this.#redis = redis
  }

  get prefix(): string {
    return bullPrefix(this.#config)
  }

  /** The queue of `type` (same object on every call). */
  get(type: AnyJobType | string): Queue {
    const name = typeof type === 'string' ? type : type.name
    let q = this.#queues.get(name)
    if (!q) {
      q = new Queue(name, { connection: this.#redis, prefix: this.prefix, skipVersionCheck: true })
      q.on('error', () => {}) // connection errors surface as failed commands
      this.#queues.set(name, q)
    }
    return q
  }

  /** Closes the queues (not the shared connection). */
  async close(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((q) => q.close().catch(() => {})))
    this.#queues.clear()
  }
}
