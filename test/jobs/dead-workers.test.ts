import { describe, expect, it } from 'vitest'
import { CLAIM_GRACE_MS, Registry } from '../../src/registry/registry.js'
import { sleepJob } from './fixtures/probe-jobs.js'
import { activeOn, jobEnded, victimDiesMidJob, victimWorkerSuite, waitFor } from './support.js'

describe('a dead worker’s jobs handed on from the registry’s expiry', () => {
  // BullMQ's defaults: without a hand-off the job would wait 30 s for its lock, then up to 30 s more.
  // The registry's: a heartbeat every 200 ms, gone after 2 s without one.
  const s = victimWorkerSuite({
    FLEET_JOB_LOCK: '30s',
    FLEET_JOB_STALLED_INTERVAL: '30s',
    FLEET_REGISTRY_HEARTBEAT: '200ms',
    FLEET_REGISTRY_TTL: '2s',
  })

  it('expired entries are claimed once, and stay claimable for a while though no longer listed', async () => {
    const registry = new Registry(s.ctx.redis, `${s.ctx.config.redisPrefix}claim:`)
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
    expect(await s.ctx.redis.hexists(registry.key('worker'), 'dead')).toBe(1) // kept for its claim
    expect(CLAIM_GRACE_MS).toBeGreaterThanOrEqual(10_000)
    const claims = await Promise.all(Array.from({ length: 8 }, () => registry.claimExpired('worker')))
    expect(claims.flat().map((e) => e.id)).toEqual(['dead'])
    expect(claims.flat()[0]).toMatchObject({ queues: ['q'], host: 'h' })
    expect((await registry.list('worker')).map((e) => e.id)).toEqual(['alive'])
    expect(await s.ctx.redis.hkeys(registry.key('worker'))).toEqual(['alive'])
  })

  it('a SIGKILLed worker’s job runs to completion on another worker within seconds, without fleet up', async () => {
    const queue = s.client.queues.get(sleepJob)
    const registry = new Registry(s.ctx.redis, s.ctx.config.redisPrefix)
    expect((await registry.list('worker')).find((e) => e.id === 'worker-victim')?.queues).toContain(
      sleepJob.name,
    )
    const { survivor, a, b, died } = await victimDiesMidJob(s, 20)
    try {
      await waitFor('job A to run again on the survivor', activeOn(queue, a.id, 'worker-survivor'), 15_000)
      const runningAgainMs = performance.now() - died
      const done = (id: string) => jobEnded(s.client, id)
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
      const effects = await s.ctx.pool.query<{ job_id: string }>('SELECT job_id FROM probe_effects')
      expect(effects.rows.map((r) => r.job_id).sort()).toEqual([a.id, b.id].sort())
      // The dead entry was claimed (taken out), the survivor's is there.
      expect((await registry.list('worker')).map((e) => e.id)).toEqual(['worker-survivor'])
      expect(await s.ctx.redis.hexists(registry.key('worker'), 'worker-victim')).toBe(0)
    } finally {
      await survivor.stop()
    }
  }, 90_000)
})
