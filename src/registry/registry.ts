/**
 * The instance registry in the store Redis: each process announces itself (role, URL, state) and renews
 * the announcement with a heartbeat; a process that stops renewing disappears after the TTL. One hash per
 * role (`<prefix>registry:<role>`) holds the entries, each stamped with its expiry in Redis time, so every
 * operation touches one key and is atomic (and Cluster-safe).
 */
import type { Redis } from 'ioredis'
import { scripts } from './scripts.js'

export type InstanceRole = 'web' | 'worker' | 'lb'
export type InstanceState = 'starting' | 'ready' | 'draining'

export interface InstanceInfo {
  id: string
  role: InstanceRole
  /** Where the instance serves HTTP: a web server's app, a worker's health and metrics, an LB's public port. */
  url?: string
  /** A load balancer's admin port (/status, /metrics, the dashboard). */
  adminUrl?: string
  /** A worker's job queues, so that whoever finds it dead hands its active jobs on (src/jobs/dead-workers.ts). */
  queues?: string[]
  host: string
  pid: number
  state: InstanceState
  /** Epoch milliseconds. */
  startedAt: number
}

export interface RegistryEntry extends InstanceInfo {
  /** Epoch milliseconds (Redis clock) after which the entry counts as gone. */
  expiresAt: number
}

/** How long an expired worker entry stays claimable (by claimExpired) before a list() prunes it. */
export const CLAIM_GRACE_MS = 60_000

/** Reads and writes registry entries; holds no state of its own. */
export class Registry {
  readonly #redis: Redis
  readonly #prefix: string

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis
    this.#prefix = prefix
  }

  /** The Redis key that holds the entries of `role`. */
  key(role: InstanceRole): string {
    return `${this.#prefix}registry:${role}`
  }

  /** Writes (or renews) an entry that lives `ttlMs` from now; returns its expiry. */
  async announce(info: InstanceInfo, ttlMs: number): Promise<number> {
    const args = [info.id, JSON.stringify(info), ttlMs]
    return (await scripts.announce.run(this.#redis, [this.key(info.role)], args)) as number
  }

  /** Removes an entry at once (a clean exit). */
  async remove(role: InstanceRole, id: string): Promise<void> {
    await this.#redis.hdel(this.key(role), id)
  }

  /**
   * The live entries of `role`, oldest first; expired ones are pruned on the way (a worker's only after
   * CLAIM_GRACE_MS, so that a live worker claims it first and hands its jobs on).
   */
  async list(role: InstanceRole): Promise<RegistryEntry[]> {
    const keep = role === 'worker' ? CLAIM_GRACE_MS : 0
    const raw = (await scripts.list.run(this.#redis, [this.key(role)], [keep])) as string[]
    return raw.map((s) => JSON.parse(s) as RegistryEntry).sort((a, b) => a.startedAt - b.startedAt)
  }

  /**
   * Takes the expired entries of `role` out and returns them: of every process that calls this, exactly one
   * gets each dead instance (an atomic script), to hand its work on.
   */
  async claimExpired(role: InstanceRole): Promise<RegistryEntry[]> {
    const raw = (await scripts.claimExpired.run(this.#redis, [this.key(role)], [])) as string[]
    return raw.map((s) => JSON.parse(s) as RegistryEntry)
  }
}
