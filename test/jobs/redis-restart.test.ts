/**
 * The store Redis restarted under a running worker process (its own redis-server, so nothing else is
 * disturbed): the worker reconnects, the job that was active finishes (once), and new jobs run.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { Database } from '../../src/db/database.js'
import { JobClient } from '../../src/jobs/client.js'
import { connectRedis, type Redis } from '../../src/redis/connect.js'
import { freePort } from '../../src/stack/ports.js'
import { LocalRedis } from '../../src/stack/redis.js'
import { createTestContext, type TestContext } from '../support/context.js'
import { flakyJob, sleepJob } from './fixtures/probe-jobs.js'
import { fastJobEnv, spawnWorker, type WorkerChild, waitFor } from './support.js'

describe('the store Redis restarted under a worker', () => {
  let dir: string
  let server: LocalRedis
  let ctx: TestContext
  let redis: Redis
  let client: JobClient
  let worker: WorkerChild | undefined

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-jobs-redis-'))
    server = new LocalRedis({ role: 'store', dataDir: dir, port: await freePort() })
    await server.start()
    ctx = await createTestContext({ env: { ...fastJobEnv, REDIS_URL: server.url } })
    redis = connectRedis(server.url)
    const config = loadConfig({ env: ctx.env })
    client = new JobClient({ config, redis, db: new Database(ctx.pool) }, { timeoutMs: 2_000 })
    worker = await spawnWorker({ ...ctx.env, FLEET_INSTANCE_ID: 'worker-restart' })
  }, 90_000)

  afterAll(async () => {
    worker?.child.kill('SIGKILL')
    try {
      await client?.close()
      redis?.disconnect()
      await ctx?.cleanup()
    } finally {
      // The redis-server this test started is stopped even when the cleanup fails.
      await server?.stop()
      if (dir) await fs.rm(dir, { recursive: true, force: true })
    }
  })

  const final = (id: string, timeoutMs = 30_000) =>
    waitFor(
      `${id} to end`,
      async () => {
        const v = await client.get(id, 'user:1')
        return v.state === 'completed' || v.state === 'failed' ? v : undefined
      },
      timeoutMs,
    )

  it('keeps working: the active job ends once, new jobs run, readiness comes back', async () => {
    const first = await client.submit(flakyJob, { failures: 0 }, 'user:1')
    expect((await final(first.id)).state).toBe('completed')

    const long = await client.submit(sleepJob, { ms: 100, steps: 20 }, 'user:1')
    await waitFor('the long job to start', async () => {
      const v = await client.get(long.id, 'user:1')
      return v.state === 'active' ? v : undefined
    })
    await server.stop() // SIGTERM: redis-server writes its AOF and exits
    expect(worker!.child.exitCode).toBeNull()
    // While Redis is away, a submission fails fast with a coded 503 instead of hanging.
    await expect(client.submit(flakyJob, { failures: 0 }, 'user:1')).rejects.toMatchObject({
      code: 'FLEET_E_JOBS_UNAVAILABLE',
    })
    // fixed wait: away longer than the job lock (FLEET_JOB_LOCK 1 s), so that the lock expires meanwhile (its
    // expiry is a time in the AOF: only time passing while Redis is down makes it a real outage).
    await new Promise((r) => setTimeout(r, 1_500))
    await server.start()

    const done = await final(long.id)
    expect(done.state).toBe('completed')
    const effects = await ctx.pool.query('SELECT count(*)::int AS n FROM probe_effects WHERE job_id = $1', [
      long.id,
    ])
    expect(effects.rows[0].n).toBe(1)

    const after = await client.submit(flakyJob, { failures: 1 }, 'user:1')
    expect(await final(after.id)).toMatchObject({ state: 'completed', attempts: 2 })
    await waitFor('the worker to be ready again', async () => {
      const res = await fetch(`${worker!.url}/readyz`)
      return res.status === 200 ? true : undefined
    })
    expect(worker!.child.exitCode).toBeNull()
  })
})
