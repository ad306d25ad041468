/**
 * Hands a dead worker's active jobs on at once, instead of after its locks expire (FLEET_JOB_LOCK) and the
 * next stalled check runs (FLEET_JOB_STALLED_INTERVAL): up to a minute with the defaults.
 *
 * Whoever knows that worker `instance` is gone (`fleet up`'s supervisor, the moment the process exits; any
 * live worker, once the dead one's registry entry expires (dead-workers.ts); an operator with
 * `fleet jobs hand-off`) calls this. It goes through BullMQ's own stalled mechanism, so the
 * job's bookkeeping stays BullMQ's: for each active job that worker took (BullMQ records the worker's name,
 * Fleet's instance id, as `processedBy`), the lock is deleted and the job marked as a stalled candidate; then
 * BullMQ's stalled check runs now. It moves the job back to wait, counts the stall (past
 * `maxStalledCount` it fails the job instead) and emits `stalled`; a live worker starts it at once, as
 * another attempt (`attempts` counts it).
 *
 * Only for a worker known to be dead: a live worker's job handed on would run twice.
 */
import { Queue, type QueueOptions } from 'bullmq'
import type { Config } from '../config/index.js'
import type { Redis } from '../redis/connect.js'
import { bullPrefix } from './queues.js'

/** BullMQ's stalled-check options, as every Fleet worker runs them (see runner.ts). */
export const MAX_STALLED_COUNT = 2

export interface HandOffResult {
  /** Job ids moved back to wait (or failed for stalling too often), per queue. */
  handedOn: Record<string, string[]>
}

/**
 * Moves the active jobs of the dead worker `instance` in the queues `types` back to wait through BullMQ's
 * stalled check; returns what it moved.
 */
export async function handOffJobs(
  redis: Redis,
  config: Pick<Config, 'redisPrefix' | 'jobStalledInterval'>,
  instance: string,
  types: readonly string[],
  only: {
    /**
     * Only jobs that turned active before this (epoch ms): a later one cannot be the dead worker's, but a
     * new process's under the same instance id (`fleet up` restarts `worker-1` as `worker-1`).
     */
    activeBefore?: number
  } = {},
): Promise<HandOffResult> {
  const handedOn: Record<string, string[]> = {}
  for (const type of types) {
    // The stalled script reads these two options from its queue, as it does from a Worker's.
    const options = {
      connection: redis,
      prefix: bullPrefix(config),
      skipVersionCheck: true,
      maxStalledCount: MAX_STALLED_COUNT,
      stalledInterval: config.jobStalledInterval,
    } as QueueOptions
    const queue = new Queue(type, options)
    queue.on('error', () => {}) // surfaces as a failed command below
    try {
      const active = await redis.lrange(queue.keys.active, 0, -1)
      if (active.length === 0) continue
      const owners = await redis
        .pipeline(active.map((id) => ['hmget', queue.toKey(id), 'pb', 'processedOn']))
        .exec()
      const mine = active.filter((_, i) => {
        const [pb, processedOn] = (owners?.[i]?.[1] ?? []) as (string | null)[]
        if (pb !== instance) return false
        return only.activeBefore === undefined || Number(processedOn) <= only.activeBefore
      })
      if (mine.length === 0) continue
      const marks = redis.multi()
      for (const id of mine) marks.del(`${queue.toKey(id)}:lock`)
      marks.sadd(queue.keys.stalled, ...mine)
      marks.del(queue.keys['stalled-check']) // the check below runs now, not at the next interval
      await marks.exec()
      const moved = await queue.scripts.moveStalledJobsToWait()
      handedOn[type] = moved.filter((id) => mine.includes(id))
    } finally {
      await queue.close().catch(() => {})
    }
  }
  return { handedOn }
}
