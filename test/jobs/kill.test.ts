/**
 * A worker process SIGKILLed in the middle of a job: its lock expires, another worker picks the job up and
 * completes it, and the job's effect in PostgreSQL happens once.
 */
import { Job } from 'bullmq'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { Database } from '../../src/db/database.js'
import { JobClient } from '../../src/jobs/client.js'
import { startWorker } from '../../src/jobs/worker-process.js'
import { createTestContext, type TestContext } from '../support/context.js'
import { flakyJob, sleepJob } from './fixtures/probe-jobs.js'
import { fastJobEnv, spawnWorker, type WorkerChild, waitFor } from './support.js'

describe('a worker killed mid-job', () => {
  let ctx: TestContext
  let client: JobClient
  let victim: WorkerChild | undefined

  beforeAll(async () => {
    ctx = await createTestContext({ env: fastJobEnv })
    client = new JobClient({ config: ctx.config, redis: ctx.redis, db: new Database(ctx.pool) })
    victim = await spawnWorker({
      ...ctx.env,
      FLEET_INSTANCE_ID: 'worker-victim',
      FLEET_WORKER_CONCURRENCY: '1',
    })
  }, 90_000)

  afterAll(async () => {
    victim?.child.kill('SIGKILL')
    await client?.close()
    await ctx?.cleanup()
  })

  it('leaves the job to another worker, which completes it once', async () => {
    const view = await client.submit(sleepJob, { ms: 200, steps: 15 }, 'user:1')
    const queue = client.queues.get(sleepJob)
    await waitFor('the victim to make progress', async () => {
      const job = await Job.fromId(queue, view.id)
      return job && (await job.getState()) === 'active' && Number(job.progress) > 0 ? job : undefined
    })
    expect((await Job.fromId(queue, view.id))?.processedBy).toBe('worker-victim')
    victim!.child.kill('SIGKILL')
    expect((await victim!.exited).signal).toBe('SIGKILL')

    // The survivor starts after the death, so it can only have got the job from the stalled check.
    const survivor = await startWorker(
      loadConfig({ env: { ...ctx.env, FLEET_INSTANCE_ID: 'worker-survivor' } }),
      [sleepJob, flakyJob],
    )
    try {
      const done = await waitFor(
        'the job to complete',
        async () => {
          const v = await client.get(view.id, 'user:1')
          return v.state === 'completed' || v.state === 'failed' ? v : undefined
        },
        30_000,
      )
      expect(done.state).toBe('completed')
      expect((done.result as { pid: number }).pid).toBe(process.pid)
      // Both runs count: the one that stalled with its worker, and the one that completed.
      expect(done.attempts).toBe(2)
      const record = await ctx.pool.query('SELECT attempts FROM fleet_jobs WHERE id = $1', [view.id])
      expect(record.rows).toEqual([{ attempts: 2 }])
      const effects = await ctx.pool.query('SELECT pid FROM probe_effects WHERE job_id = $1', [view.id])
      expect(effects.rows).toEqual([{ pid: process.pid }])
    } finally {
      await survivor.stop()
    }
  })
})
