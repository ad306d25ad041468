/**
 * Hands a dead worker's active jobs on from the registry's expiry, on any host and without `fleet up`: every
 * live worker looks, each FLEET_REGISTRY_HEARTBEAT, for worker entries that expired (no heartbeat for
 * FLEET_REGISTRY_TTL: the process or its host is gone) and claims them; the claim is one atomic script
 * (registry/scripts.ts, claim-expired-1), so exactly one worker gets each dead one and hands its jobs on
 * through BullMQ's stalled mechanism (handoff.ts). A worker is so replaced within TTL + one heartbeat
 * (about 12 s with the defaults) instead of FLEET_JOB_LOCK plus a stalled check (up to a minute).
 *
 * What it cannot know: a worker that is alive but did not renew its entry for the whole TTL (a pause that
 * long, or cut off from the store Redis while still reaching it for its job locks) has its jobs handed on
 * while it runs them, so they may run twice; Fleet's jobs write their effect once whatever the attempts
 * (docs/jobs.md). A worker that claims and dies before handing on leaves the jobs to BullMQ's stalled check.
 */
import type { Config } from '../config/index.js'
import type { Logger } from '../log.js'
import type { Redis } from '../redis/connect.js'
import { Registry } from '../registry/registry.js'
import { handOffJobs } from './handoff.js'

export interface DeadWorkerHandOff {
  /** The dead worker's instance id. */
  worker: string
  host: string
  pid: number
  /** Job ids handed on, per queue. */
  handedOn: Record<string, string[]>
  ms: number
}

export class DeadWorkerWatch {
  readonly #redis: Redis
  readonly #config: Pick<Config, 'redisPrefix' | 'jobStalledInterval' | 'registryHeartbeat'>
  readonly #registry: Registry
  readonly #queues: readonly string[]
  readonly #logger: Logger
  #timer: NodeJS.Timeout | undefined
  #sweeping: Promise<DeadWorkerHandOff[]> | undefined
  #stopped = false

  /** `queues`: this worker's own, used for a dead entry that does not list its own. */
  constructor(o: {
    redis: Redis
    config: Pick<Config, 'redisPrefix' | 'jobStalledInterval' | 'registryHeartbeat'>
    queues: readonly string[]
    logger: Logger
  }) {
    this.#redis = o.redis
    this.#config = o.config
    this.#registry = new Registry(o.redis, o.config.redisPrefix)
    this.#queues = o.queues
    this.#logger = o.logger
  }

  /** Looks now and then every heartbeat, until stop(). */
  start(): void {
    this.#schedule(0)
  }

  /** Claims the expired worker entries and hands their jobs on; one sweep at a time, never throws. */
  sweep(): Promise<DeadWorkerHandOff[]> {
    this.#sweeping ??= this.#sweep().finally(() => {
      this.#sweeping = undefined
    })
    return this.#sweeping
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#sweeping
  }

  #schedule(delay: number): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      void this.sweep().finally(() => this.#schedule(this.#config.registryHeartbeat))
    }, delay)
    this.#timer.unref()
  }

  async #sweep(): Promise<DeadWorkerHandOff[]> {
    let dead: Awaited<ReturnType<Registry['claimExpired']>>
    try {
      dead = await this.#registry.claimExpired('worker')
    } catch (err) {
      this.#logger.debug({ err: (err as Error).message }, 'could not look for dead workers; next heartbeat')
      return []
    }
    const done: DeadWorkerHandOff[] = []
    for (const entry of dead) {
      const t0 = Date.now()
      try {
        const { handedOn } = await handOffJobs(
          this.#redis,
          this.#config,
          entry.id,
          entry.queues ?? this.#queues,
          { activeBefore: entry.expiresAt },
        )
        const ids = Object.values(handedOn).flat()
        const result = { worker: entry.id, host: entry.host, pid: entry.pid, handedOn, ms: Date.now() - t0 }
        done.push(result)
        this.#logger[ids.length > 0 ? 'warn' : 'info'](
          { ...result, jobs: ids.length },
          `worker ${entry.id} (host ${entry.host}, pid ${entry.pid}) stopped renewing its registry entry: ${ids.length} active job${ids.length === 1 ? '' : 's'} handed on`,
        )
      } catch (err) {
        this.#logger.warn(
          { err: (err as Error).message, worker: entry.id },
          `worker ${entry.id} is gone but handing its jobs on failed: they run again once their lock expires (FLEET_JOB_LOCK)`,
        )
      }
    }
    return done
  }
}
