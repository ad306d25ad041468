/**
 * A worker SIGKILLed mid-job with no `fleet up` around (issue 20): its registry entry expires, a live
 * worker claims it (once: an atomic script) and hands its active job on, which then runs to completion
 * there within a few seconds, not after the 30 s lock and stalled check. A live worker's job is left alone,
 * and each effect happens once.
 */
import { Job } from 'bullmq'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { Database } from '../../src/db/database.js'
import { JobClient } from '../../src/jobs/client.js'
import { startWorker } from '../../src/jobs/worker-process.js'
import { CLAIM_GRACE_MS, Registry } from '../../src/registry/registry.js'
import { createTestContext, type TestContext } from '../support/context.js'
import { flakyJob, sleepJob } from './fixtures/probe-jobs.js'
import { fastJobEnv, spawnWorker, type WorkerChild, waitFor } from './support.js'

describe('a dead worker’s jobs handed on from the registry’s expiry', () => {
  let ctx: TestContext
  let client: JobClient
  let victim: WorkerChild | undefined

  beforeAll(async () => {
    // BullMQ's defaults: without a hand-off the job would wait 30 s for its lock, then up to 30 s more.
    // The registry's: a heartbeat every 200 ms, gone after 2 s without one.
    ctx = await createTestContext({
      env: {
        ...fastJobEnv,
        FLEET_JOB_LOCK: '30s',
        FLEET_JOB_STALLED_INTERVAL: '30s',
        FLEET_REGISTRY_HEARTBEAT: '200ms',
        FLEET_REGISTRY_TTL: '2s',
      },
    })
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

  it('expired entries are claimed once, and stay claimable for a while though no longer listed', async () => {
    const registry = new Registry(ctx.redis, `${ctx.config.redisPrefix}claim:`)
    const entry = (id: string) => ({
      id,
      role: 'worker' as const,
      host: 'h',
      pid: 1,
      state: 'ready' as const,
      startedAt: Date.now(),
      queues: ['q'],
    })
    await registry.announce(entry('alive'), 60_000)
    await registry.announce(entry('dead'), 1)
    await waitFor('the entry to expire', async () =>
      (await registry.list('worker')).length === 1 ? true : undefined,
    )
    expect(await ctx.redis.hexists(registry.key('worker'), 'dead')).toBe(1) // kept for its claim
    expect(CLAIM_GRACE_MS).toBeGreaterThanOrEqual(10_000)
    const claims = await Promise.all(Array.from({ length: 8 }, () => registry.claimExpired('worker')))
    expect(claims.flat().map((e) => e.id)).toEqual(['dead'])
    expect(claims.flat()[0]).toMatchObject({ queues: ['q'], host: 'h' })
    expect((await registry.list('worker')).map((e) => e.id)).toEqual(['alive'])
    expect(await ctx.redis.hkeys(registry.key('worker'))).toEqual(['alive'])
  })

  it('a SIGKILLed worker’s job runs to completion on another worker within seconds, without fleet up', async () => {
    const queue = client.queues.get(sleepJob)
    const activeOn = (id: string, worker: string) => async () => {
      const job = await Job.fromId(queue, id)
      return job && (await job.getState()) === 'active' && job.processedBy === worker ? job : undefined
    }
    const registry = new Registry(ctx.redis, ctx.config.redisPrefix)
    expect((await registry.list('worker')).find((e) => e.id === 'worker-victim')?.queues).toContain(
      sleepJob.name,
    )
    const a = await client.submit(sleepJob, { ms: 200, steps: 15 }, 'user:1')
    await waitFor('the victim to start job A', activeOn(a.id, 'worker-victim'))
    const survivor = await startWorker(
      loadConfig({
        env: { ...ctx.env, FLEET_INSTANCE_ID: 'worker-survivor', FLEET_WORKER_CONCURRENCY: '2' },
      }),
      [sleepJob, flakyJob],
    )
    try {
      const b = await client.submit(sleepJob, { ms: 200, steps: 20 }, 'user:1')
      await waitFor('the survivor to start job B', activeOn(b.id, 'worker-survivor'))

      victim!.child.kill('SIGKILL')
      expect((await victim!.exited).signal).toBe('SIGKILL')
      const died = performance.now()
      await waitFor('job A to run again on the survivor', activeOn(a.id, 'worker-survivor'), 15_000)
      const runningAgainMs = performance.now() - died
      const done = (id: string) =>
        waitFor(
          `job ${id} to end`,
          async () => {
            const v = await client.get(id, 'user:1')
            return v.state === 'completed' || v.state === 'failed' ? v : undefined
          },
          30_000,
        )
      const doneA = await done(a.id)
      const completedMs = performance.now() - died
      console.log(
        `worker SIGKILLed to its job running again elsewhere: ${Math.round(runningAgainMs)} ms, completed: ${Math.round(completedMs)} ms (registry TTL 2 s, job lock 30 s)`,
      )
      // TTL (2 s) + at most one heartbeat of the survivor's watch (200 ms) + the hand-off itself.
      expect(runningAgainMs).toBeLessThan(5_000)
      expect(doneA).toMatchObject({ state: 'completed', attempts: 2 }) // the killed run counts
      expect(completedMs).toBeLessThan(10_000)
      const doneB = await done(b.id)
      expect(doneB).toMatchObject({ state: 'completed', attempts: 1 }) // the live worker's: left alone
      const effects = await ctx.pool.query<{ job_id: string }>('SELECT job_id FROM probe_effects')
      expect(effects.rows.map((r) => r.job_id).sort()).toEqual([a.id, b.id].sort())
      // The dead entry was claimed (taken out), the survivor's is there.
      expect((await registry.list('worker')).map((e) => e.id)).toEqual(['worker-survivor'])
      expect(await ctx.redis.hexists(registry.key('worker'), 'worker-victim')).toBe(0)
    } finally {
      await survivor.stop()
    }
  }, 90_000)
})
