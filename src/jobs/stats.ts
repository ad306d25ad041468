/**
 * Figures per job type for `fleet jobs stats`: queue depths from Redis (every worker's jobs) and durations
 * of the jobs that ended recently, from their records in PostgreSQL.
 */
import type { Config } from '../config/index.js'
import type { Database } from '../db/database.js'
import type { Redis } from '../redis/connect.js'
import { bullPrefix, QueueSet } from './queues.js'
import { JobStore } from './store.js'

export interface JobTypeStats {
  type: string
  queued: number
  active: number
  delayed: number
  /** Finished jobs still kept in Redis (retention). */
  completed: number
  failed: number
  /** From PostgreSQL, over the window: ended jobs and durations (ms, start of last attempt to end). */
  recent: { completed: number; failed: number; cancelled: number; p50Ms: number | null; p99Ms: number | null }
}

/** The job types that have a queue in Redis (found by their meta key). */
export async function queueNames(redis: Redis, config: Pick<Config, 'redisPrefix'>): Promise<string[]> {
  const prefix = `${bullPrefix(config)}:`
  const names = new Set<string>()
  let cursor = '0'
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*:meta`, 'COUNT', 1000)
    for (const k of keys) names.add(k.slice(prefix.length, -':meta'.length))
    cursor = next
    if (cursor === '0') break
  }
  return [...names].sort()
}

/** Stats of `types` (plus every queue found in Redis); `windowMs` bounds the PostgreSQL part. */
export async function jobStats(
  deps: { config: Config; redis: Redis; db?: Database },
  types: readonly string[],
  windowMs = 3_600_000,
): Promise<JobTypeStats[]> {
  const names = [...new Set([...types, ...(await queueNames(deps.redis, deps.config))])].sort()
  const queues = new QueueSet(deps.config, deps.redis)
  const durations = deps.db ? await new JobStore(deps.db).durations(windowMs).catch(() => []) : []
  try {
    return await Promise.all(
      names.map(async (type) => {
        const c = await queues
          .get(type)
          .getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed')
        const rows = durations.filter((d) => d.type === type)
        const of = (state: string) => rows.find((r) => r.state === state)
        const done = of('completed')
        return {
          type,
          queued: (c.waiting ?? 0) + (c.prioritized ?? 0),
          active: c.active ?? 0,
          delayed: c.delayed ?? 0,
          completed: c.completed ?? 0,
          failed: c.failed ?? 0,
          recent: {
            completed: done?.count ?? 0,
            failed: of('failed')?.count ?? 0,
            cancelled: of('cancelled')?.count ?? 0,
            p50Ms: done?.p50 == null ? null : Math.round(done.p50),
            p99Ms: done?.p99 == null ? null : Math.round(done.p99),
          },
        }
      }),
    )
  } finally {
    await queues.close()
  }
}

/** The stats as an aligned text table. */
export function formatJobStats(stats: readonly JobTypeStats[]): string {
  const head = [
    'type',
    'queued',
    'active',
    'delayed',
    'completed',
    'failed',
    'done 1h',
    'failed 1h',
    'p50',
    'p99',
  ]
  const ms = (v: number | null) => (v === null ? '-' : v < 1000 ? `${v}ms` : `${(v / 1000).toFixed(1)}s`)
  const rows = stats.map((s) => [
    s.type,
    String(s.queued),
    String(s.active),
    String(s.delayed),
    String(s.completed),
    String(s.failed),
    String(s.recent.completed),
    String(s.recent.failed + s.recent.cancelled),
    ms(s.recent.p50Ms),
    ms(s.recent.p99Ms),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [line(head), ...rows.map(line)].join('\n')
}
