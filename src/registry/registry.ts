/**
 * The instance registry in the store Redis: each process announces itself (role, URL, state) and renews
 * the announcement with a heartbeat; a process that stops renewing disappears after the TTL. One hash per
 * role (`<prefix>registry:<role>`) holds the entries, each stamped with its expiry in Redis time, so every
 * operation touches one key and is atomic (and Cluster-safe).
 */
import type { Redis } from 'ioredis'

export type InstanceRole = 'web' | 'worker' | 'lb'
export type InstanceState = 'starting' | 'ready' | 'draining'

export interface InstanceInfo {
  id: string
  role: InstanceRole
  /** Where the instance serves HTTP (web servers); absent for workers. */
  url?: string
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

/**
 * KEYS[1] the role's hash
 * ARGV[1] instance id, ARGV[2] entry JSON (without expiresAt), ARGV[3] TTL in ms
 * Stores the entry with expiresAt = Redis now + TTL; returns expiresAt.
 */
const ANNOUNCE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entry = cjson.decode(ARGV[2])
entry.expiresAt = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return entry.expiresAt
`

/**
 * KEYS[1] the role's hash
 * Drops entries whose expiresAt has passed (Redis clock); returns the live entries as JSON strings.
 */
const LIST = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local ok, entry = pcall(cjson.decode, all[i + 1])
  if ok and type(entry) == 'table' and tonumber(entry.expiresAt) and tonumber(entry.expiresAt) > now then
    live[#live + 1] = all[i + 1]
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return live
`

interface RegistryCommands {
  fleetRegistryAnnounce(key: string, id: string, json: string, ttlMs: number): Promise<number>
  fleetRegistryList(key: string): Promise<string[]>
}

/** Reads and writes registry entries; holds no state of its own. */
export class Registry {
  readonly #redis: Redis & RegistryCommands
  readonly #prefix: string

  constructor(redis: Redis, prefix: string) {
    if (!('fleetRegistryAnnounce' in redis)) {
      redis.defineCommand('fleetRegistryAnnounce', { numberOfKeys: 1, lua: ANNOUNCE })
      redis.defineCommand('fleetRegistryList', { numberOfKeys: 1, lua: LIST })
    }
    this.#redis = redis as Redis & RegistryCommands
    this.#prefix = prefix
  }

  /** The Redis key that holds the entries of `role`. */
  key(role: InstanceRole): string {
    return `${this.#prefix}registry:${role}`
  }

  /** Writes (or renews) an entry that lives `ttlMs` from now; returns its expiry. */
  async announce(info: InstanceInfo, ttlMs: number): Promise<number> {
    return this.#redis.fleetRegistryAnnounce(this.key(info.role), info.id, JSON.stringify(info), ttlMs)
  }

  /** Removes an entry at once (a clean exit). */
  async remove(role: InstanceRole, id: string): Promise<void> {
    await this.#redis.hdel(this.key(role), id)
  }

  /** The live entries of `role`, oldest first; expired ones are pruned on the way. */
  async list(role: InstanceRole): Promise<RegistryEntry[]> {
    const raw = await this.#redis.fleetRegistryList(this.key(role))
    return raw.map((s) => JSON.parse(s) as RegistryEntry).sort((a, b) => a.startedAt - b.startedAt)
  }
}
