/**
 * A worker process's life: it registers as role `worker`, serves /healthz /readyz /metrics, runs CPU-heavy
 * code on a thread (its event loop keeps answering), and on SIGTERM stops taking jobs, finishes a short
 * active job, hands a long one back to the queue within FLEET_SHUTDOWN_TIMEOUT, deregisters and exits 0.
 */
import { Job } from 'bullmq'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { Database } from '../../src/db/database.js'
import { JobClient } from '../../src/jobs/client.js'
import { startWorker } from '../../src/jobs/worker-process.js'
import { Registry } from '../../src/registry/registry.js'
import { createTestContext, type TestContext } from '../support/context.js'
import { sleepJob, spinJob } from './fixtures/probe-jobs.js'
import { fastJobEnv, spawnWorker, type WorkerChild, waitFor } from './support.js'

describe('a worker process', () => {
  let ctx: TestContext
  let client: JobClient
  let worker: WorkerChild | undefined

  beforeAll(async () => {
    ctx = await createTestContext({ env: fastJobEnv })
    client = new JobClient({ config: ctx.config, redis: ctx.redis, db: new Database(ctx.pool) })
    worker = await spawnWorker({ ...ctx.env, FLEET_INSTANCE_ID: 'worker-g', FLEET_WORKER_CONCURRENCY: '2' })
  }, 90_000)

  afterAll(async () => {
    worker?.child.kill('SIGKILL')
    await client?.close()
    await ctx?.cleanup()
  })

  const final = (id: string) =>
    waitFor(`${id} to end`, async () => {
      const v = await client.get(id, 'user:1')
      return ['completed', 'failed', 'cancelled'].includes(v.state) ? v : undefined
    })

  it('registers, serves health and metrics, and runs CPU-heavy code off its event loop', async () => {
    const entries = await new Registry(ctx.redis, ctx.config.redisPrefix).list('worker')
    expect(entries.map((e) => [e.id, e.state, e.url])).toEqual([['worker-g', 'ready', worker!.url]])
    expect((await fetch(`${worker!.url}/healthz`)).status).toBe(200)
    expect((await fetch(`${worker!.url}/readyz`)).status).toBe(200)

    const spin = await client.submit(spinJob, { ms: 1500 }, 'user:1')
    await waitFor('the spin to start', async () =>
      (await client.get(spin.id, 'user:1')).state === 'active' ? 1 : undefined,
    )
    // While a thread burns CPU, the main thread answers at once, many times over.
    for (let i = 0; i < 5; i++) {
      const ac = AbortSignal.timeout(1_000)
      expect((await fetch(`${worker!.url}/healthz`, { signal: ac })).status).toBe(200)
    }
    const done = await final(spin.id)
    expect(done).toMatchObject({ state: 'completed' })
    expect((done.result as { threadId: number }).threadId).toBeGreaterThan(0)

    // Cancelling CPU-heavy work stops the thread's task.
    const long = await client.submit(spinJob, { ms: 20_000 }, 'user:1')
    await waitFor('the long spin to start', async () =>
      (await client.get(long.id, 'user:1')).state === 'active' ? 1 : undefined,
    )
    await client.cancel(long.id, 'user:1')
    expect(await final(long.id)).toMatchObject({
      state: 'cancelled',
      error: { code: 'FLEET_E_JOBS_CANCELLED' },
    })

    const metrics = await (await fetch(`${worker!.url}/metrics`)).text()
    expect(metrics).toMatch(/fleet_jobs_processed_total\{type="test.spin",outcome="completed"[^}]*\} 1/)
    expect(metrics).toMatch(/fleet_jobs_processed_total\{type="test.spin",outcome="cancelled"[^}]*\} 1/)
    expect(metrics).toMatch(/fleet_jobs\{type="test.sleep",state="queued"/)
  })

  it('on SIGTERM finishes a short job, hands a long one back, deregisters and exits 0', async () => {
    const short = await client.submit(sleepJob, { ms: 300, steps: 3 }, 'user:1')
    const long = await client.submit(sleepJob, { ms: 500, steps: 40 }, 'user:1')
    const queue = client.queues.get(sleepJob)
    await waitFor('both jobs to run', async () => {
      const states = await Promise.all(
        [short.id, long.id].map(async (id) => (await Job.fromId(queue, id))?.getState()),
      )
      return states.every((s) => s === 'active') ? true : undefined
    })
    const t0 = Date.now()
    worker!.child.kill('SIGTERM')
    const exit = await worker!.exited
    expect(exit.code).toBe(0)
    expect(Date.now() - t0).toBeLessThan(15_000) // bounded by the 3 s shutdown timeout (plus start-up slack)
    expect(worker!.lines.some((l) => l.includes('handed active jobs back'))).toBe(true)

    expect(await new Registry(ctx.redis, ctx.config.redisPrefix).list('worker')).toEqual([])
    expect((await client.get(short.id, 'user:1')).state).toBe('completed')
    const handedBack = await client.get(long.id, 'user:1')
    expect(handedBack.state).toBe('queued')

    // Another worker takes the handed-back job at once (no wait for a lock to expire).
    const next = await startWorker(loadConfig({ env: { ...ctx.env, FLEET_INSTANCE_ID: 'worker-next' } }), [
      sleepJob,
    ])
    try {
      await waitFor('the next worker to take it', async () =>
        (await Job.fromId(queue, long.id))?.processedBy === 'worker-next' ? true : undefined,
      )
      await client.cancel(long.id, 'user:1')
      expect((await final(long.id)).state).toBe('cancelled')
    } finally {
      await next.stop()
    }
  })
})
