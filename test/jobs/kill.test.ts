/**
 * A worker process SIGKILLed in the middle of a job: its lock expires, another worker picks the job up and
 * completes it, and the job's effect in PostgreSQL happens once.
 */
import { Job } from 'bullmq'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { startWorker } from '../../src/jobs/worker-process.js'
import { flakyJob, sleepJob } from './fixtures/probe-jobs.js'
import { jobEnded, victimWorkerSuite, waitFor } from './support.js'

describe('a worker killed mid-job', () => {
  const s = victimWorkerSuite()

  it('leaves the job to another worker, which completes it once', async () => {
    const view = await s.client.submit(sleepJob, { ms: 200, steps: 15 }, 'user:1')
    const queue = s.client.queues.get(sleepJob)
    await waitFor('the victim to make progress', async () => {
      const job = await Job.fromId(queue, view.id)
      return job && (await job.getState()) === 'active' && Number(job.progress) > 0 ? job : undefined
    })
    expect((await Job.fromId(queue, view.id))?.processedBy).toBe('worker-victim')
    s.victim.child.kill('SIGKILL')
    expect((await s.victim.exited).signal).toBe('SIGKILL')

    // The survivor starts after the death, so it can only have got the job from the stalled check.
    const survivor = await startWorker(
      loadConfig({ env: { ...s.ctx.env, FLEET_INSTANCE_ID: 'worker-survivor' } }),
      [sleepJob, flakyJob],
    )
    try {
      const done = await jobEnded(s.client, view.id)
      expect(done.state).toBe('completed')
      expect((done.result as { pid: number }).pid).toBe(process.pid)
      // Both runs count: the one that stalled with its worker, and the one that completed.
      expect(done.attempts).toBe(2)
      const record = await s.ctx.pool.query('SELECT attempts FROM fleet_jobs WHERE id = $1', [view.id])
      expect(record.rows).toEqual([{ attempts: 2 }])
      const effects = await s.ctx.pool.query('SELECT pid FROM probe_effects WHERE job_id = $1', [view.id])
      expect(effects.rows).toEqual([{ pid: process.pid }])
    } finally {
      await survivor.stop()
    }
  })
})
