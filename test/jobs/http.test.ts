/**
 * The jobs HTTP API end to end over real sockets: 202 + Location, GET, SSE (from another web server than
 * the one that took the POST, with Last-Event-ID resume), owner-only access, Idempotency-Key, cancellation
 * of a queued and of an active job, and the result kept in PostgreSQL after Redis let the job go.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { declaredJobType } from '../../src/jobs/define.js'
import { type RunningWorker, startWorker } from '../../src/jobs/worker-process.js'
import type { AppDeps } from '../../src/process/deps.js'
import { accepted, idempotencyKey, jobClient, jobOwner, jobRoutes } from '../../src/web/jobs-api.js'
import { createTestApp, type TestApp } from '../support/app.js'
import { isolatedEnv } from '../support/context.js'
import { flakyJob, refuseJob, sleepJob } from './fixtures/probe-jobs.js'
import { fastJobEnv, loginCookie, readSse, waitFor } from './support.js'

/** The route an application would have: starts a job of the named probe type. */
async function startRoute(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.post<{ Params: { type: string }; Body: unknown }>('/test/jobs/:type', async (request, reply) => {
    const type = declaredJobType(request.params.type)
    if (!type) return reply.code(404).send({ error: { code: 'NO_TYPE', message: 'no such type' } })
    const view = await jobClient(deps).submit(type, request.body, await jobOwner(request), {
      idempotencyKey: idempotencyKey(request),
    })
    return accepted(reply, view)
  })
}

describe('jobs over HTTP', () => {
  let a: TestApp
  let b: TestApp
  let urlA: string
  let urlB: string
  let worker: RunningWorker
  let alice: string
  let bob: string

  beforeAll(async () => {
    const env = isolatedEnv({ ...fastJobEnv, FLEET_JOB_MODULES: '' })
    a = await createTestApp([jobRoutes, startRoute], { env })
    b = await createTestApp([jobRoutes, startRoute], { env })
    urlA = await a.app.listen({ port: 0, host: '127.0.0.1' })
    urlB = await b.app.listen({ port: 0, host: '127.0.0.1' })
    await a.deps.db.query(
      'CREATE TABLE IF NOT EXISTS probe_effects (job_id text NOT NULL, pid integer NOT NULL)',
    )
    alice = await loginCookie(a.deps.redis, a.deps.config, { id: 1 })
    bob = await loginCookie(a.deps.redis, a.deps.config, { id: 2 })
    worker = await startWorker(loadConfig({ env: { ...a.env, FLEET_INSTANCE_ID: 'worker-http' } }), [
      sleepJob,
      flakyJob,
      refuseJob,
    ])
  })

  afterAll(async () => {
    await worker?.stop()
    await b?.app.close()
    await a?.close()
  })

  const post = (
    base: string,
    type: string,
    body: unknown,
    cookie: string,
    headers: Record<string, string> = {},
  ) =>
    fetch(`${base}/test/jobs/${type}`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    })
  const get = (base: string, path: string, cookie: string) => fetch(`${base}${path}`, { headers: { cookie } })

  it('answers 202 with Location, streams progress and the end over SSE from another server, keeps the result', async () => {
    const res = await post(urlA, 'test.sleep', { ms: 60, steps: 4 }, alice)
    expect(res.status).toBe(202)
    const body = (await res.json()) as { id: string; state: string }
    expect(body.state).toBe('queued')
    expect(res.headers.get('location')).toBe(`/api/jobs/${body.id}`)

    const sse = await readSse(`${urlB}/api/jobs/${body.id}/events`, { cookie: alice })
    expect(sse.status).toBe(200)
    expect(sse.contentType).toMatch(/^text\/event-stream/)
    const kinds = sse.events.map((e) => e.event)
    expect(kinds[0]).toBe('state')
    expect(kinds.at(-1)).toBe('completed')
    expect(kinds).toContain('progress')
    const last = sse.events.at(-1)!
    expect(last.data.result).toMatchObject({ slept: 240 })
    const progress = sse.events.filter((e) => e.event === 'progress').map((e) => e.data.progress as number)
    expect(progress).toEqual([...progress].sort((x, y) => x - y))

    // Resuming from the first event replays everything after it, ending with the same completion.
    const resumed = await readSse(`${urlA}/api/jobs/${body.id}/events`, {
      cookie: alice,
      'last-event-id': sse.events[0].id!,
    })
    expect(resumed.events.at(-1)?.event).toBe('completed')
    expect(resumed.events.every((e) => e.event !== 'state')).toBe(true)

    const view = (await (await get(urlB, `/api/jobs/${body.id}`, alice)).json()) as Record<string, unknown>
    expect(view).toMatchObject({ id: body.id, state: 'completed', attempts: 1, result: { slept: 240 } })

    // Once Redis let the job go, the record in PostgreSQL answers.
    const queue = jobClient(a.deps).queues.get('test.sleep')
    await queue.remove(body.id)
    const after = (await (await get(urlA, `/api/jobs/${body.id}`, alice)).json()) as Record<string, unknown>
    expect(after).toMatchObject({ id: body.id, state: 'completed', result: { slept: 240 } })
    const effects = await a.deps.db.query('SELECT count(*)::int AS n FROM probe_effects WHERE job_id = $1', [
      body.id,
    ])
    expect(effects.rows[0].n).toBe(1)
  })

  it('hides a job from everyone but its owner, and needs a login', async () => {
    const res = await post(urlA, 'test.sleep', { ms: 1, steps: 1 }, alice)
    const { id } = (await res.json()) as { id: string }
    const asBob = await get(urlA, `/api/jobs/${id}`, bob)
    expect(asBob.status).toBe(404)
    expect(((await asBob.json()) as { error: { code: string } }).error.code).toBe('FLEET_E_JOBS_NOT_FOUND')
    expect((await get(urlA, `/api/jobs/${id}/events`, bob)).status).toBe(404)
    expect(
      (await fetch(`${urlA}/api/jobs/${id}`, { method: 'DELETE', headers: { cookie: bob } })).status,
    ).toBe(404)
    expect((await fetch(`${urlA}/api/jobs/${id}`)).status).toBe(401)
    expect((await get(urlA, '/api/jobs/not-a-job-id', alice)).status).toBe(404)
  })

  it('refuses a bad payload with a coded 400', async () => {
    const res = await post(urlA, 'test.sleep', { ms: 'soon' }, alice)
    expect(res.status).toBe(400)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'FLEET_E_JOBS_INVALID_PAYLOAD',
    )
  })

  it('returns the same job for a repeated Idempotency-Key, and 409 for the same key with another payload', async () => {
    const key = { 'idempotency-key': 'order-42-thumbs' }
    const [r1, r2] = await Promise.all([
      post(urlA, 'test.sleep', { ms: 1, steps: 1 }, alice, key),
      post(urlB, 'test.sleep', { ms: 1, steps: 1 }, alice, key),
    ])
    expect(r1.status).toBe(202)
    expect(r2.status).toBe(202)
    const id1 = ((await r1.json()) as { id: string }).id
    const id2 = ((await r2.json()) as { id: string }).id
    expect(id2).toBe(id1)
    // Another user with the same key gets another job.
    const other = (
      (await (await post(urlA, 'test.sleep', { ms: 1, steps: 1 }, bob, key)).json()) as { id: string }
    ).id
    expect(other).not.toBe(id1)
    const conflict = await post(urlA, 'test.sleep', { ms: 2, steps: 1 }, alice, key)
    expect(conflict.status).toBe(409)
    expect(((await conflict.json()) as { error: { code: string } }).error.code).toBe(
      'FLEET_E_JOBS_IDEMPOTENCY_CONFLICT',
    )
    expect(
      (await post(urlA, 'test.sleep', { ms: 1, steps: 1 }, alice, { 'idempotency-key': '' })).status,
    ).toBe(400)
  })

  it('retries transient errors and ends failed with the coded error when attempts run out', async () => {
    const ok = ((await (await post(urlA, 'test.flaky', { failures: 2 }, alice)).json()) as { id: string }).id
    const bad = ((await (await post(urlA, 'test.flaky', { failures: 5 }, alice)).json()) as { id: string }).id
    const refused = ((await (await post(urlA, 'test.refuse', {}, alice)).json()) as { id: string }).id
    const final = (id: string) =>
      waitFor(`${id} to end`, async () => {
        const v = (await (await get(urlA, `/api/jobs/${id}`, alice)).json()) as Record<string, unknown>
        return v.state === 'completed' || v.state === 'failed' ? v : undefined
      })
    expect(await final(ok)).toMatchObject({ state: 'completed', attempts: 3, result: { attempt: 3 } })
    const failed = await final(bad)
    expect(failed).toMatchObject({ state: 'failed', attempts: 3, error: { code: 'FLEET_E_JOBS_FAILED' } })
    expect((failed.error as { message: string }).message).toContain('attempt 3')
    // A permanent error is not retried.
    expect(await final(refused)).toMatchObject({
      state: 'failed',
      attempts: 1,
      error: { code: 'FLEET_E_JOBS_PERMANENT', message: 'this input can never work' },
    })
    const rec = await a.deps.db.query('SELECT state, error FROM fleet_jobs WHERE id = $1', [bad])
    expect(rec.rows[0]).toMatchObject({ state: 'failed', error: { code: 'FLEET_E_JOBS_FAILED' } })
  })

  it('cancels an active job (the processor is stopped) and a queued one (removed)', async () => {
    const active = (
      (await (await post(urlA, 'test.sleep', { ms: 200, steps: 50 }, alice)).json()) as { id: string }
    ).id
    await waitFor('the job to start', async () => {
      const v = (await (await get(urlA, `/api/jobs/${active}`, alice)).json()) as { state: string }
      return v.state === 'active' ? v : undefined
    })
    const sse = readSse(`${urlB}/api/jobs/${active}/events`, { cookie: alice })
    const del = await fetch(`${urlA}/api/jobs/${active}`, { method: 'DELETE', headers: { cookie: alice } })
    expect(del.status).toBe(202)
    expect(await del.json()).toMatchObject({ state: 'active', cancelRequested: true })
    const events = (await sse).events
    expect(events.at(-1)).toMatchObject({ event: 'cancelled', data: { state: 'cancelled' } })
    const v = (await (await get(urlA, `/api/jobs/${active}`, alice)).json()) as Record<string, unknown>
    expect(v).toMatchObject({ state: 'cancelled', error: { code: 'FLEET_E_JOBS_CANCELLED' } })
    const effects = await a.deps.db.query('SELECT count(*)::int AS n FROM probe_effects WHERE job_id = $1', [
      active,
    ])
    expect(effects.rows[0].n).toBe(0)

    // A queued job: pause taking jobs so it stays queued, then cancel it.
    const queue = jobClient(a.deps).queues.get('test.sleep')
    await queue.pause()
    try {
      const queued = (
        (await (await post(urlA, 'test.sleep', { ms: 1, steps: 1 }, alice)).json()) as { id: string }
      ).id
      const d = await fetch(`${urlA}/api/jobs/${queued}`, { method: 'DELETE', headers: { cookie: alice } })
      expect(d.status).toBe(200)
      expect(await d.json()).toMatchObject({ state: 'cancelled' })
      const again = await fetch(`${urlA}/api/jobs/${queued}`, {
        method: 'DELETE',
        headers: { cookie: alice },
      })
      expect(again.status).toBe(409)
      expect(((await again.json()) as { error: { code: string } }).error.code).toBe('FLEET_E_JOBS_FINISHED')
      const sseAfter = await readSse(`${urlA}/api/jobs/${queued}/events`, { cookie: alice })
      expect(sseAfter.events.map((e) => e.event)).toEqual(['cancelled'])
    } finally {
      await queue.resume()
    }
  })

  it('fleet jobs stats prints queue depths and recent durations per type', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'jobs', 'stats', '--json'],
      { env: { ...process.env, ...a.env }, timeout: 60_000 },
    )
    const stats = JSON.parse(stdout) as {
      type: string
      completed: number
      recent: { completed: number; failed: number; p50Ms: number | null }
    }[]
    const sleep = stats.find((s) => s.type === 'test.sleep')!
    expect(sleep.completed).toBeGreaterThan(0)
    expect(sleep.recent.completed).toBeGreaterThan(0)
    expect(sleep.recent.p50Ms).not.toBeNull()
    expect(stats.find((s) => s.type === 'test.flaky')!.recent.failed).toBeGreaterThan(0)
    // A type that never ran is listed too, at 0 (the built-in no-op of the probe app the CLI loads).
    expect(stats.find((s) => s.type === 'fleet.noop')).toMatchObject({ completed: 0 })
  })
})
