/**
 * Faults of a worker while it runs a chaos job: SIGKILL (the time from its death to the job running again
 * is measured: a target) or SIGSTOP for CHAOS_HOLD (the job must still finish, once).
 */
import type pg from 'pg'
import { HOLD_MS, RECOVER_MS } from '../options.js'
import { until } from '../wait.js'
import { type Fault, stopFor } from './fault.js'

/** A chaos job executing on `instance` now, with at least `leftMs` of its run ahead. */
async function jobRunningOn(db: pg.Pool, instance: string, leftMs: number): Promise<string | undefined> {
  const { rows } = await db.query<{ job_id: string }>(
    `SELECT r.job_id FROM chaos_runs r
      WHERE r.instance = $1 AND r.started_at > clock_timestamp() - make_interval(secs => $2::float / 1000)
        AND NOT EXISTS (SELECT 1 FROM chaos_effects e WHERE e.job_id = r.job_id)
      ORDER BY r.started_at DESC LIMIT 1`,
    [instance, 1_500 - leftMs],
  )
  return rows[0]?.job_id
}

/** Time from `since` (epoch ms) to the next execution of `jobId` starting, or undefined within `ms`. */
async function rerunAfter(
  db: pg.Pool,
  jobId: string,
  since: number,
  ms: number,
): Promise<number | undefined> {
  const at = await until(
    async () => {
      const { rows } = await db.query<{ at: Date }>(
        'SELECT started_at AS at FROM chaos_runs WHERE job_id = $1 AND started_at > $2 ORDER BY started_at LIMIT 1',
        [jobId, new Date(since)],
      )
      return rows[0]?.at.getTime()
    },
    ms,
    25,
  )
  return at === undefined ? undefined : at - since
}

export function workerFault(signal: 'SIGKILL' | 'SIGSTOP'): Fault {
  return {
    name: `${signal} worker-1`,
    what:
      signal === 'SIGKILL'
        ? 'kill -9 worker-1 mid-job'
        : `kill -STOP worker-1 mid-job for ${HOLD_MS / 1000} s`,
    async inject({ stack, db, measures }) {
      const notes: string[] = []
      const jobId = await until(() => jobRunningOn(db, 'worker-1', 900), 20_000, 50)
      const pid = await stack.pidOf('worker-1')
      const at = Date.now()
      if (signal === 'SIGKILL') {
        process.kill(pid, 'SIGKILL')
        if (jobId) {
          const ms = await rerunAfter(db, jobId, at, 30_000)
          // Not running again within 30 s misses the target too (it is not "not measured").
          measures.deathToRerun.push(ms ?? Number.POSITIVE_INFINITY)
          notes.push(
            ms === undefined
              ? `its job ${jobId} did not run again within 30 s`
              : `death to its job running again: ${ms} ms`,
          )
        } else notes.push('no chaos job ran on worker-1 within 20 s')
        const s = await until(() => stack.whole('worker-1', pid), RECOVER_MS, 200)
        return { wholeAt: s ? Date.now() : undefined, notes }
      }
      await stopFor(async () => [pid], notes)
      if (jobId) {
        const effects = await until(async () => {
          const { rows } = await db.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM chaos_effects WHERE job_id = $1',
            [jobId],
          )
          return rows[0].n > 0 ? rows[0].n : undefined
        }, 20_000)
        notes.push(`its job ${effects ? 'finished after SIGCONT' : 'had not finished 20 s after SIGCONT'}`)
      }
      const s = await until(() => stack.whole(), RECOVER_MS, 200)
      return { wholeAt: s ? Date.now() : undefined, notes }
    },
  }
}
