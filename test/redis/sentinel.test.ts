/**
 * The store Redis under Redis Sentinel (REDIS_URL=redis+sentinel://...), on a real deployment of the test's
 * own (test/redis/sentinel-bed.ts: a primary, two replicas, three Sentinels, quorum 2, down-after 1 s):
 * - Fleet's connection follows a failover of a killed primary, and of a hung one (SIGSTOP: its socket stays
 *   open, so only `+switch-master` from the Sentinels can move the connection; a connection without the
 *   failover detector stays stuck, which the test shows too);
 * - a Sentinel that hangs is given up after 1 s for the next one;
 * - a `fleet worker` (Fleet's own runner, BullMQ) takes jobs enqueued after each failover, and after its
 *   connections were dropped while every Sentinel was down, without a restart: the silent hangs BullMQ workers
 *   have had after a Sentinel failover fail this test;
 * - with FLEET_STORE_WAIT_REPLICAS=1 an acknowledged session write is on a replica when it is answered, and
 *   when no replica confirms it the client gets 503 FLEET_E_REDIS_NOT_REPLICATED, also for a job submission,
 *   while reads go on; a primary with `min-replicas-to-write` refuses writes itself once cut off.
 * Figures (ms from the fault to the promotion and to the first write that works) are printed.
 */
import { Redis as IORedis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { Database } from '../../src/db/database.js'
import { JobClient } from '../../src/jobs/client.js'
import { acknowledged, replicasOnline } from '../../src/redis/acknowledged.js'
import { connectionEpoch, connectRedis, type Redis } from '../../src/redis/connect.js'
import { jobClient } from '../../src/web/jobs-api.js'
import { flakyJob } from '../jobs/fixtures/probe-jobs.js'
import { fastJobEnv, spawnWorker, type WorkerChild } from '../jobs/support.js'
import { createTestApp, type TestApp } from '../support/app.js'
import { createTestContext, type TestContext } from '../support/context.js'
import { waitFor } from '../support/wait.js'
import { ask, SentinelBed } from './sentinel-bed.js'

/** The TCP port of the server a connection talks to, as that server reports it. */
async function serverPort(redis: Redis): Promise<number> {
  return Number(/tcp_port:(\d+)/.exec(await redis.info('server'))?.[1])
}

/** Writes through `redis` until one works; the time it took from `since`, in ms. */
async function firstWrite(redis: Redis, key: string, since: number, timeoutMs = 20_000): Promise<number> {
  await waitFor(
    'a write to work again',
    async () => ((await redis.set(key, String(Date.now()))) === 'OK' ? true : undefined),
    timeoutMs,
    20,
  )
  return Math.round(performance.now() - since)
}

describe('the store Redis under Sentinel', () => {
  let bed: SentinelBed
  const opened: Redis[] = []
  /** A connection as a web server's store connection is made (1 s command timeout). */
  const storeConnection = (name: string, extra = {}) => {
    const r = connectRedis(bed.url(), { name, extra: { commandTimeout: 1_000, ...extra } })
    opened.push(r)
    return r
  }

  beforeAll(async () => {
    bed = await SentinelBed.start()
  }, 60_000)

  afterAll(async () => {
    for (const r of opened) r.disconnect()
    await bed?.stop()
  })

  it('follows a killed primary: writes work again within seconds of the promotion', async () => {
    const redis = storeConnection('killed')
    const old = await bed.primaryPort()
    expect(await serverPort(redis)).toBe(old)
    const t0 = performance.now()
    bed.signal(old, 'SIGKILL')
    const promoted = await bed.failedOver(old)
    const promotedMs = Math.round(performance.now() - t0)
    const writeMs = await firstWrite(redis, 'sentinel:killed', t0)
    expect(await serverPort(redis)).toBe(promoted)
    console.log(`killed primary: promoted after ${promotedMs} ms, first write after ${writeMs} ms`)
    expect(writeMs - promotedMs).toBeLessThan(2_500)
    await bed.restart(old) // back as a replica, for the next faults
  }, 60_000)

  it('follows a hung primary (SIGSTOP) by +switch-master; without the detector a connection stays stuck', async () => {
    const redis = storeConnection('hung')
    const control = storeConnection('hung-no-detector', { failoverDetector: false })
    const old = await bed.primaryPort()
    await redis.set('sentinel:hung', 'before')
    await control.set('sentinel:hung', 'before')
    const t0 = performance.now()
    bed.signal(old, 'SIGSTOP')
    try {
      const promoted = await bed.failedOver(old)
      const promotedMs = Math.round(performance.now() - t0)
      const writeMs = await firstWrite(redis, 'sentinel:hung', t0)
      expect(await serverPort(redis)).toBe(promoted)
      console.log(`hung primary: promoted after ${promotedMs} ms, first write after ${writeMs} ms`)
      expect(writeMs - promotedMs).toBeLessThan(2_500)
      // The same connection without +switch-master still waits on the hung server's open socket.
      await expect(control.set('sentinel:hung', 'after')).rejects.toThrow(/timed out/)
    } finally {
      bed.signal(old, 'SIGCONT')
    }
    // Continued, the old primary is made a replica by the Sentinels (which close its clients).
    await bed.isReplica(old)
    await waitFor('the stuck connection to move too', async () =>
      (await control.set('sentinel:hung', 'after')) === 'OK' ? true : undefined,
    )
  }, 60_000)

  it('asks the next Sentinel when one accepts connections but does not answer', async () => {
    const first = bed.sentinels[0]
    first.child.kill('SIGSTOP')
    let ms: number
    try {
      const t0 = performance.now()
      // Asks the Sentinels in their order: the hung one first. (A longer command timeout than the store's
      // 1 s, so that the first command outlives the lookup it waits for.)
      const redis = storeConnection('hung-sentinel', { commandTimeout: 5_000 })
      expect(await redis.ping()).toBe('PONG')
      ms = Math.round(performance.now() - t0)
    } finally {
      first.child.kill('SIGCONT')
    }
    console.log(`first Sentinel hung: connected through the next one after ${ms} ms`)
    expect(ms).toBeGreaterThanOrEqual(900) // it did wait for the hung one, up to sentinelCommandTimeout
    expect(ms).toBeLessThan(3_000)
    await bed.steady()
  }, 60_000)

  it('does not reconnect on a failover of another master the same Sentinels watch (the cache)', async () => {
    await bed.addMaster('fleetother')
    const redis = storeConnection('other-master')
    await redis.ping()
    // What ioredis's detector does alone: any +switch-master closes the connection.
    const control = new IORedis({
      sentinels: bed.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
      name: bed.masterName,
      failoverDetector: true,
    })
    opened.push(control)
    control.on('error', () => {})
    let controlCloses = 0
    control.on('close', () => {
      controlCloses++
    })
    await control.ping()
    const before = connectionEpoch(redis)
    await ask(bed.sentinels[0].port, 'SENTINEL', 'FAILOVER', 'fleetother')
    // The control connection closing shows that the detectors got fleetother's +switch-master.
    await waitFor('the announcement of the other failover', async () =>
      controlCloses > 0 ? true : undefined,
    )
    expect(connectionEpoch(redis)).toBe(before)
    expect(await redis.ping()).toBe('PONG')
  }, 60_000)

  describe('a fleet worker', () => {
    let ctx: TestContext
    let redis: Redis
    let client: JobClient
    let worker: WorkerChild | undefined

    beforeAll(async () => {
      ctx = await createTestContext({ env: { ...fastJobEnv, REDIS_URL: bed.url() } })
      redis = storeConnection('jobs-client')
      client = new JobClient(
        { config: loadConfig({ env: ctx.env }), redis, db: new Database(ctx.pool) },
        { timeoutMs: 2_000 },
      )
      worker = await spawnWorker({ ...ctx.env, FLEET_INSTANCE_ID: 'worker-sentinel' })
    }, 90_000)

    afterAll(async () => {
      worker?.child.kill('SIGKILL')
      await client?.close()
      await ctx?.cleanup()
    })

    /** Submits a job (again, while the store answers 503) and waits for it to complete; ms from `since`. */
    const runJob = async (since: number): Promise<number> => {
      const job = await waitFor(
        'a submission to be accepted',
        () => client.submit(flakyJob, { failures: 0 }, 'user:1'),
        20_000,
        50,
      )
      await waitFor(
        `${job.id} to complete`,
        async () => ((await client.get(job.id, 'user:1')).state === 'completed' ? true : undefined),
        20_000,
        50,
      )
      return Math.round(performance.now() - since)
    }

    it('takes jobs again after a killed and after a hung primary, without a restart', async () => {
      const pid = worker!.child.pid
      await runJob(performance.now())

      let old = await bed.primaryPort()
      let t0 = performance.now()
      bed.signal(old, 'SIGKILL')
      const afterKill = await runJob(t0)
      await bed.restart(old)

      old = await bed.primaryPort()
      t0 = performance.now()
      bed.signal(old, 'SIGSTOP')
      let afterHang: number
      try {
        afterHang = await runJob(t0)
      } finally {
        bed.signal(old, 'SIGCONT')
      }
      await bed.isReplica(old)
      console.log(
        `worker: a job enqueued after the fault completed ${afterKill} ms (killed primary), ${afterHang} ms (hung primary) after it`,
      )
      expect(afterKill).toBeLessThan(15_000)
      expect(afterHang).toBeLessThan(15_000)
      expect(worker!.child.exitCode).toBeNull()
      expect(worker!.child.pid).toBe(pid)
      await waitFor('the worker to be ready', async () =>
        (await fetch(`${worker!.url}/readyz`)).status === 200 ? true : undefined,
      )
    }, 90_000)

    it('takes jobs again after reconnecting while no Sentinel answered for longer than its blocking watchdog', async () => {
      // BullMQ's known silent hang (taskforcesh/bullmq#4378): the blocking connection reconnects while no
      // Sentinel answers, BullMQ's watchdog (block timeout + 1 s) disconnects it mid-lookup, and it stays
      // ended for good. Every client of the primary is dropped while the Sentinels are down for 8 s.
      const pid = worker!.child.pid
      const primary = await bed.primaryPort()
      await bed.killSentinels()
      try {
        await ask(primary, 'CLIENT', 'KILL', 'TYPE', 'normal')
        // fixed wait: the fault's length (no Sentinel for 8 s, longer than BullMQ's blocking watchdog).
        await new Promise((r) => setTimeout(r, 8_000))
      } finally {
        await bed.startSentinels()
      }
      const t0 = performance.now()
      const ms = await runJob(t0)
      console.log(`worker: after 8 s without Sentinels, a job ran ${ms} ms after they were back`)
      // The failover detector's own Sentinel connections failed meanwhile, silently (no stderr noise).
      expect(worker!.lines.filter((l) => l.includes('Unhandled error event'))).toEqual([])
      expect(ms).toBeLessThan(15_000)
      expect(worker!.child.pid).toBe(pid)
      expect(worker!.child.exitCode).toBeNull()
    }, 60_000)
  })

  describe('acknowledged writes (FLEET_STORE_WAIT_REPLICAS=1)', () => {
    let t: TestApp

    beforeAll(async () => {
      t = await createTestApp(
        [
          async (app) => {
            app.post('/note', async (request) => {
              await request.session.set({ note: 'kept' })
              return { ok: true }
            })
            app.get('/note', async (request) => ({ note: (await request.session.get('note')) ?? null }))
            app.post('/mark/:n', async (request) => {
              await request.session.set({ [`m${(request.params as { n: string }).n}`]: '1' })
              return { ok: true }
            })
          },
        ],
        {
          env: {
            ...fastJobEnv,
            REDIS_URL: bed.url(),
            // The cache Redis through the same Sentinels (its own database here).
            CACHE_REDIS_URL: bed.url('db=1'),
            FLEET_STORE_WAIT_REPLICAS: '1',
            FLEET_STORE_WAIT_TIMEOUT: '300ms',
          },
        },
      )
    }, 60_000)

    afterAll(async () => {
      await t?.close()
    })

    it('answers once a replica has the write, and 503 FLEET_E_REDIS_NOT_REPLICATED when none confirms it', async () => {
      const primary = await bed.primaryPort()
      const replicas = await bed.replicaPorts()
      expect(replicas.length).toBe(2)
      expect(await replicasOnline(t.deps.redis)).toBe(2) // what the start-up check compares with the setting
      expect(await serverPort(t.deps.cacheRedis)).toBe(primary)
      expect(await t.deps.cacheRedis.client('INFO')).toMatch(/ db=1 /)
      const set = await t.app.inject({ method: 'POST', url: '/note' })
      expect(set.statusCode).toBe(200)
      const sid = set.cookies.find((c) => c.name === 'fleet_sid')?.value
      const cookie = `fleet_sid=${sid}`
      // Acknowledged means on a replica already: one of them has it the moment the answer came.
      const held = await Promise.all(
        replicas.map((p) => ask(p, 'HGET', `${t.deps.config.redisPrefix}sess:${sid}`, 'note')),
      )
      expect(held).toContain('kept')
      // A write whose connection drops before its WAIT answers (the WAIT would run on a new connection,
      // perhaps to a new primary, and confirm nothing of it) is not acknowledged either.
      await expect(
        acknowledged(t.deps.redis, async (r) => {
          await r.hset(`${t.deps.config.redisPrefix}dropped`, 'f', '1')
          await r.client('KILL', 'ID', String(await r.client('ID')), 'SKIPME', 'no') // closes after answering
        }),
      ).rejects.toMatchObject({
        code: 'FLEET_E_REDIS_NOT_REPLICATED',
        message: expect.stringMatching(/lost/),
      })
      // What the wait costs: sequential writes, plain and acknowledged, on this loopback deployment.
      const key = `${t.deps.config.redisPrefix}cost`
      const timed = async (write: () => Promise<unknown>) => {
        const t0 = performance.now()
        for (let i = 0; i < 200; i++) await write()
        return ((performance.now() - t0) / 200).toFixed(3)
      }
      const plainMs = await timed(() => t.deps.redis.hset(key, 'f', '1'))
      const ackMs = await timed(() => acknowledged(t.deps.redis, (r) => r.hset(key, 'f', '1')))
      console.log(`a store write: ${plainMs} ms plain, ${ackMs} ms acknowledged (WAIT 1), sequential`)

      for (const p of replicas) bed.signal(p, 'SIGSTOP')
      try {
        const t0 = performance.now()
        const refused = await t.app.inject({ method: 'POST', url: '/note', headers: { cookie } })
        const ms = performance.now() - t0
        expect(refused.statusCode).toBe(503)
        expect(refused.json().error).toMatchObject({
          code: 'FLEET_E_REDIS_NOT_REPLICATED',
          details: { replicas: 1, confirmed: 0 },
        })
        expect(refused.headers['retry-after']).toBeDefined()
        expect(ms).toBeGreaterThanOrEqual(290)
        expect(ms).toBeLessThan(2_000)
        // A job is not acknowledged either.
        await expect(jobClient(t.deps).submit(flakyJob, { failures: 0 }, 'user:1')).rejects.toMatchObject({
          code: 'FLEET_E_REDIS_NOT_REPLICATED',
          statusCode: 503,
        })
        // Reads do not wait behind the WAITs.
        const read = await t.app.inject({ method: 'GET', url: '/note', headers: { cookie } })
        expect(read.statusCode).toBe(200)

        // A primary told to need a replica (min-replicas-to-write) refuses writes itself once its replicas
        // lag more than min-replicas-max-lag: the write is not even made.
        await ask(primary, 'CONFIG', 'SET', 'min-replicas-max-lag', '1')
        await ask(primary, 'CONFIG', 'SET', 'min-replicas-to-write', '1')
        const cut = await waitFor('the primary to refuse writes', async () => {
          const res = await t.app.inject({ method: 'POST', url: '/note', headers: { cookie } })
          return res.json().error?.code === 'FLEET_E_HTTP_UNAVAILABLE' ? res : undefined
        })
        expect(cut.statusCode).toBe(503)
        await expect(ask(primary, 'SET', 'sentinel:cut', '1')).rejects.toThrow(/NOREPLICAS/)
      } finally {
        for (const p of replicas) bed.signal(p, 'SIGCONT')
      }
      await waitFor('writes to be acknowledged again', async () => {
        const res = await t.app.inject({ method: 'POST', url: '/note', headers: { cookie } })
        return res.statusCode === 200 ? true : undefined
      })
      await ask(primary, 'CONFIG', 'SET', 'min-replicas-to-write', '0')
    }, 60_000)

    it('keeps every acknowledged write across a killed primary (writes in flight while it dies)', async () => {
      const first = await t.app.inject({ method: 'POST', url: '/mark/0' })
      expect(first.statusCode).toBe(200)
      const sid = first.cookies.find((c) => c.name === 'fleet_sid')?.value
      const cookie = `fleet_sid=${sid}`
      const acked = new Set<number>([0])
      const refused = new Map<string, number>()
      let next = 1
      let stop = false
      // Four writers, each sending its next mark as soon as the last one is answered.
      const writers = Array.from({ length: 4 }, async () => {
        while (!stop) {
          const n = next++
          const res = await t.app.inject({ method: 'POST', url: `/mark/${n}`, headers: { cookie } })
          if (res.statusCode === 200) acked.add(n)
          else {
            const code = String(res.json().error?.code)
            refused.set(code, (refused.get(code) ?? 0) + 1)
          }
        }
      })
      await waitFor('writes to be acknowledged', async () => (acked.size > 50 ? true : undefined))
      const old = await bed.primaryPort()
      const t0 = performance.now()
      bed.signal(old, 'SIGKILL')
      const promoted = await bed.failedOver(old)
      const before = acked.size
      await waitFor('writes to be acknowledged by the new primary', async () =>
        acked.size > before + 50 ? true : undefined,
      )
      const backMs = Math.round(performance.now() - t0)
      stop = true
      await Promise.all(writers)
      const held = (await ask(promoted, 'HGETALL', `${t.deps.config.redisPrefix}sess:${sid}`)) as string[]
      const marks = new Set(
        held.filter((f, i) => i % 2 === 0 && f.startsWith('m')).map((f) => Number(f.slice(1))),
      )
      const lost = [...acked].filter((n) => !marks.has(n))
      console.log(
        `killed primary under writes: ${acked.size} acknowledged, ${lost.length} lost; refused ${JSON.stringify(Object.fromEntries(refused))}; acknowledged again ${backMs} ms after the kill`,
      )
      expect(lost).toEqual([])
      expect(
        [...refused.keys()].every((c) => c.endsWith('_UNAVAILABLE') || c.endsWith('_NOT_REPLICATED')),
      ).toBe(true)
      await bed.restart(old)
    }, 60_000)
  })
})
