/**
 * Operator views of the cache (`fleet cache stats|flush`): counters the scripts keep in the cache Redis
 * (across every process), what the keyspace holds, and invalidation by hand.
 */
import type { Redis } from 'ioredis'
import { CacheUnavailableError, InvalidTagError } from './errors.js'
import { unflaggedScripts } from './scripts.js'
import { EPOCH_TAG } from './store.js'

export interface CacheReport {
  /** hit, miss, invalid, expired (added by each process every 5 s), fill, refused, invalidate (by the scripts). */
  counters: Record<string, number>
  keys: { entries: number; tokens: number; locks: number }
  memory: { usedBytes: number; maxBytes: number; policy: string; evictedKeys: number }
}

const field = (info: string, name: string): string =>
  new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? ''

/** Counts the cache's keys with SCAN (never KEYS), bounded to `maxKeys` visited. */
export async function cacheReport(redis: Redis, prefix: string, maxKeys = 1_000_000): Promise<CacheReport> {
  const base = `${prefix}{cache}:`
  try {
    const raw = await redis.hgetall(`${base}stats`)
    const counters: Record<string, number> = {}
    for (const [k, v] of Object.entries(raw)) counters[k] = Number(v)
    const keys = { entries: 0, tokens: 0, locks: 0 }
    let cursor = '0'
    let seen = 0
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${base}*`, 'COUNT', 1000)
      cursor = next
      for (const k of batch) {
        const kind = k.slice(base.length, base.length + 2)
        if (kind === 'e:') keys.entries++
        else if (kind === 't:') keys.tokens++
        else if (kind === 'l:') keys.locks++
      }
      seen += batch.length
    } while (cursor !== '0' && seen < maxKeys)
    const memory = await redis.info('memory')
    const stats = await redis.info('stats')
    return {
      counters,
      keys,
      memory: {
        usedBytes: Number(field(memory, 'used_memory')),
        maxBytes: Number(field(memory, 'maxmemory')),
        policy: field(memory, 'maxmemory_policy'),
        evictedKeys: Number(field(stats, 'evicted_keys')),
      },
    }
  } catch (err) {
    throw new CacheUnavailableError({ cause: err })
  }
}

/**
 * Invalidates one tag, or everything (the epoch tag) and then deletes the entries to free memory.
 * Returns the number of entries deleted.
 */
export async function flushCache(redis: Redis, prefix: string, tag?: string): Promise<number> {
  if (tag !== undefined && !/^\S{1,200}$/.test(tag)) throw new InvalidTagError(tag)
  const base = `${prefix}{cache}:`
  try {
    // Without the `#!lua` line: an operator's one-off call runs on any Redis version.
    await unflaggedScripts.bump.runBuffer(
      redis,
      [`${base}t:${tag ?? EPOCH_TAG}`, `${base}stats`],
      [`flush-${Date.now()}-${Math.random().toString(36).slice(2)}`, 86_400_000],
    )
    if (tag !== undefined) return 0
    let deleted = 0
    let cursor = '0'
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${base}e:*`, 'COUNT', 1000)
      cursor = next
      if (batch.length > 0) deleted += await redis.unlink(...batch)
    } while (cursor !== '0')
    return deleted
  } catch (err) {
    throw new CacheUnavailableError({ cause: err })
  }
}
