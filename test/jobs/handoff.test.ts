/**
 * A worker SIGKILLed mid-job, with the default 30 s lock and stalled interval: handing its jobs on (what
 * `fleet up` does the moment a worker exits) gets the job running on a live worker within a few seconds,
 * not after the lock expires; a live worker's job is left alone, and each effect happens once.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { handOffJobs } from '../../src/jobs/handoff.js'
import { Registry } from '../../src/registry/registry.js'
import { flakyJob, sleepJob } from './fixtures/probe-jobs.js'
import { activeOn, jobEnded, victimDiesMidJob, victimWorkerSuite, waitFor } from './support.js'

const run = promisify(execFile)

describe('handing a dead worker’s jobs on', () => {
  const s = victimWorkerSuite({ FLEET_JOB_LOCK: '30s', FLEET_JOB_STALLED_INTERVAL: '30s' })

  const fleet = (args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      env: { ...process.env, ...s.ctx.env },
      timeout: 30_000,
    })

  it('moves only the dead worker’s job, which a live worker starts within seconds and completes once', async () => {
    const { survivor, a, b, queue, died } = await victimDiesMidJob(s, 10)
    try {
      const { handedOn } = await handOffJobs(s.ctx.redis, s.ctx.config, 'worker-victim', [
        sleepJob.name,
        flakyJob.name,
      ])
      expect(handedOn).toEqual({ [sleepJob.name]: [a.id] }) // B, the live worker's, stays where it is
      await waitFor('job A to run again on the survivor', activeOn(queue, a.id, 'worker-survivor'), 10_000)
      const runningAgainMs = performance.now() - died
      console.log(`worker death to its job running again: ${Math.round(runningAgainMs)} ms (lock: 30 s)`)
      expect(runningAgainMs).toBeLessThan(5_000)

      const done = (id: string) => jobEnded(s.client, id)
      // The operator's way, outside `fleet up`: refused for a worker the registry knows alive.
      const cli = await fleet(['jobs', 'hand-off', 'worker-survivor']).catch((err) => err)
      expect(cli.code).toBe(1)
      expect(cli.stderr).toContain('FLEET_E_JOBS_WORKER_ALIVE')
      // The dead one once its entry expired (FLEET_REGISTRY_TTL, 2 s here): a CLI that starts fast may ask sooner.
      const registry = new Registry(s.ctx.redis, s.ctx.config.redisPrefix)
      await waitFor('the victim’s registry entry to expire', async () =>
        (await registry.list('worker')).some((e) => e.id === 'worker-victim') ? undefined : true,
      )
      const none = await fleet(['jobs', 'hand-off', 'worker-victim'])
      expect(none.stdout).toContain('0 active jobs of worker-victim handed on')

      const [doneA, doneB] = [await done(a.id), await done(b.id)]
      expect(doneA).toMatchObject({ state: 'completed', attempts: 2 }) // the killed run counts
      expect(doneB).toMatchObject({ state: 'completed', attempts: 1 })
      const effects = await s.ctx.pool.query<{ job_id: string }>(
        'SELECT job_id FROM probe_effects ORDER BY job_id',
      )
      expect(effects.rows.map((r) => r.job_id).sort()).toEqual([a.id, b.id].sort())
    } finally {
      await survivor.stop()
    }
  }, 90_000)
})
