/**
 * The other sources of a snapshot: the cache Redis's own INFO (memory, evictions) and, under `fleet up`, the
 * supervisor's status over its control socket (restarts, crashed or backing-off processes, the stores it runs).
 */
import { existsSync } from 'node:fs'
import type { Redis } from '../redis/connect.js'
import type { StatusReport } from '../stack/status.js'

export interface CacheRedisInfo {
  usedMemoryBytes: number
  /** 0: no limit. */
  maxMemoryBytes: number
  policy: string
  /** Cumulative, since the server started. */
  evictedKeys: number
  keyspaceHits: number
  keyspaceMisses: number
}

/** `INFO memory` and `INFO stats` of the cache Redis, in one round trip. */
export async function readCacheInfo(redis: Redis): Promise<CacheRedisInfo> {
  const answers = (await redis.pipeline().info('memory').info('stats').exec()) ?? []
  const fields = new Map<string, string>()
  for (const [err, text] of answers) {
    if (err) throw err
    for (const line of String(text).split('\r\n')) {
      const colon = line.indexOf(':')
      if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1))
    }
  }
  const num = (k: string) => Number(fields.get(k) ?? 0) || 0
  return {
    usedMemoryBytes: num('used_memory'),
    maxMemoryBytes: num('maxmemory'),
    policy: fields.get('maxmemory_policy') ?? '',
    evictedKeys: num('evicted_keys'),
    keyspaceHits: num('keyspace_hits'),
    keyspaceMisses: num('keyspace_misses'),
  }
}

/**
 * The status of the `fleet up` whose control socket is `socketPath`, asked with `request` (the process that
 * runs the dashboard supplies it: DashboardOptions.readSupervisor); undefined when there is none.
 */
export async function readSupervisor(
  request: SupervisorReader,
  socketPath: string,
  timeoutMs: number,
): Promise<StatusReport | undefined> {
  if (!existsSync(socketPath)) return undefined
  return request(socketPath, timeoutMs)
}

/** Asks `fleet up` for its status over its control socket. */
export type SupervisorReader = (socketPath: string, timeoutMs: number) => Promise<StatusReport>
