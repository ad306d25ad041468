/**
 * The dashboard's endpoints on a real load balancer (in process) in front of real HTTP backends, with the real
 * store Redis and PostgreSQL of the tests: the page and its files, the event stream and its figures, the
 * retry of a real failed BullMQ job (its durable record taken out, the action audited), every refusal with
 * its code, and a store Redis that is away.
 */
import { Writable } from 'node:stream'
import { Queue, Worker } from 'bullmq'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type DashboardOptions,
  dashboardExtension,
  dashboardOptionsFromConfig,
} from '../../src/dashboard/index.js'
import type { Snapshot } from '../../src/dashboard/snapshot.js'
import { type LoadBalancer, startLoadBalancer } from '../../src/lb/index.js'
import { type Backend, get, startBackend, testOptions, until } from '../lb/helpers.js'
import { createTestContext, type TestContext } from '../support/context.js'

let ctx: TestContext
let backends: Backend[]
let lb: LoadBalancer
let lines: Record<string, unknown>[]
const lbs: LoadBalancer[] = []

function logger() {
  lines = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>)
      cb()
    },
  })
  return pino({ level: 'info' }, sink)
}

async function start(over: Partial<DashboardOptions> = {}): Promise<LoadBalancer> {
  const dashboard = { ...dashboardOptionsFromConfig(ctx.config), controlSocket: undefined, ...over }
  const log = logger()
  const l = await startLoadBalancer({
    ...testOptions({ upstreams: backends.map((b) => b.url) }),
    logger: log,
    adminExtension: dashboardExtension(dashboard, log),
  })
  lbs.push(l)
  return l
}

const admin = (l: LoadBalancer, path: string) => `http://127.0.0.1:${l.adminPort}${path}`

/** The first `n` events of the stream (name and parsed data). */
async function events(l: LoadBalancer, n: number): Promise<{ event: string; data: unknown }[]> {
  const res = await fetch(admin(l, '/dashboard/events'))
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const out: { event: string; data: unknown }[] = []
  let buf = ''
  while (out.length < n) {
    const { value, done } = await reader.read()
    if (done) break
    buf += Buffer.from(value).toString()
    let i = buf.indexOf('\n\n')
    while (i >= 0) {
      const frame = buf.slice(0, i)
      buf = buf.slice(i + 2)
      const event = /^event: (.+)$/m.exec(frame)?.[1]
      const data = /^data: (.+)$/m.exec(frame)?.[1]
      if (event && data) out.push({ event, data: JSON.parse(data) })
      i = buf.indexOf('\n\n')
    }
  }
  await reader.cancel()
  return out
}

async function snapshot(l: LoadBalancer): Promise<Snapshot> {
  const res = await fetch(admin(l, '/dashboard/snapshot'))
  expect(res.status).toBe(200)
  return (await res.json()) as Snapshot
}

const bodyOf = async (res: Response) => (await res.json()) as { error: { code: string; message: string } }
const codeOf = async (res: Response) => (await bodyOf(res)).error.code

const post = (l: LoadBalancer, body: string, headers: Record<string, string> = {}) =>
  fetch(admin(l, '/dashboard/jobs/retry'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  })

beforeAll(async () => {
  ctx = await createTestContext()
  backends = [await startBackend('a'), await startBackend('b')]
  lb = await start()
})

afterAll(async () => {
  for (const l of lbs) await l.close()
  for (const b of backends) await b.close()
  await ctx.cleanup()
})

describe('dashboard endpoints', () => {
  it('serves the page and its files on the admin port only, gzipped and with ETags', async () => {
    const page = await fetch(admin(lb, '/dashboard/'))
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'")
    const html = await page.text()
    expect(html).toContain('vendor/uPlot.iife.min.js')
    for (const f of [
      'app.js',
      'charts.js',
      'style.css',
      'vendor/uPlot.iife.min.js',
      'vendor/uPlot.min.css',
    ]) {
      const res = await fetch(admin(lb, `/dashboard/${f}`))
      expect(res.status, f).toBe(200)
      expect(res.headers.get('content-encoding'), f).toBe('gzip') // fetch asks for it
      const again = await fetch(admin(lb, `/dashboard/${f}`), {
        headers: { 'if-none-match': res.headers.get('etag') ?? '' },
      })
      expect(again.status, f).toBe(304)
    }
    expect((await fetch(admin(lb, '/dashboard'), { redirect: 'manual' })).headers.get('location')).toBe(
      '/dashboard/',
    )
    expect((await fetch(admin(lb, '/'), { redirect: 'manual' })).status).toBe(302)
    // Not on the public port: there it is a path like any other, proxied to a backend.
    const pub = await get(lb.port, '/dashboard/')
    expect(JSON.parse(pub.body).backend).toMatch(/^[ab]$/)
  })

  it('answers unknown paths and wrong methods with codes', async () => {
    const missing = await fetch(admin(lb, '/dashboard/nope.js'))
    expect(missing.status).toBe(404)
    expect(await codeOf(missing)).toBe('FLEET_E_LB_NOT_FOUND')
    const wrong = await fetch(admin(lb, '/dashboard/jobs/retry'))
    expect(wrong.status).toBe(405)
    expect(wrong.headers.get('allow')).toBe('POST')
    expect(await codeOf(wrong)).toBe('FLEET_E_DASHBOARD_METHOD_NOT_ALLOWED')
    const wrong2 = await fetch(admin(lb, '/dashboard/events'), { method: 'POST' })
    expect(await codeOf(wrong2)).toBe('FLEET_E_DASHBOARD_METHOD_NOT_ALLOWED')
  })

  it('streams the history, then snapshots whose figures follow the traffic', async () => {
    for (let i = 0; i < 40; i++) await get(lb.port, '/x')
    const got = await events(lb, 4)
    expect(got[0].event).toBe('history')
    expect(Array.isArray(got[0].data)).toBe(true)
    const snaps = got.filter((e) => e.event === 'snapshot').map((e) => e.data as Snapshot)
    const s = snaps[snaps.length - 1]
    expect(s.web.map((w) => w.id).sort()).toEqual(backends.map((b) => b.url).sort())
    expect(s.web.every((w) => w.health !== 'down')).toBe(true)
    expect(s.lb.upstreams).toBe(2)
    expect(s.sources.store?.ok).toBe(true)
    expect(s.sources.cacheRedis?.ok).toBe(true)
    expect(s.cache.redis?.usedMemoryBytes).toBeGreaterThan(0)
    // Rates need two readings: send more, then the next snapshots show them.
    for (let i = 0; i < 40; i++) await get(lb.port, '/x')
    await until(async () => ((await snapshot(lb)).lb.rps ?? 0) > 0, 5000, 'a request rate')
    const after = await snapshot(lb)
    expect(after.web.some((w) => (w.share ?? 0) > 0)).toBe(true)
    expect(after.point.t).toBeGreaterThan(0)
  })

  it('lists a failed job with its code, retries it through BullMQ, takes its record out, and audits it', async () => {
    const prefix = `${ctx.config.redisPrefix}{jobs}`
    const type = 'dash.test'
    const queue = new Queue(type, { connection: ctx.redis, prefix })
    let runs = 0
    const worker = new Worker(
      type,
      async () => {
        runs++
        if (runs === 1) throw new Error('FLEET_E_TEST_BOOM: the first run fails')
        return 'ok'
      },
      { connection: ctx.redis.duplicate({ maxRetriesPerRequest: null }), prefix },
    )
    try {
      const job = await queue.add(type, { n: 1 }, { jobId: 'dash.test-1', attempts: 1 })
      await until(async () => (await job.getState()) === 'failed', 10_000, 'the job to fail')
      await ctx.pool.query(
        `INSERT INTO fleet_jobs (id, type, owner, state, error, attempts, created_at, started_at)
         VALUES ($1, $2, 'o', 'failed', '{"code":"FLEET_E_TEST_BOOM","message":"x"}', 1, now(), now())`,
        ['dash.test-1', type],
      )
      const found: { failure?: unknown } = {}
      await until(
        async () => {
          const s = await snapshot(lb)
          const f = s.jobs?.failures.find((x) => x.id === 'dash.test-1')
          if (f) found.failure = f
          return f !== undefined
        },
        15_000,
        'the failure on the dashboard (queues are found by a scan every 10 s)',
      )
      expect(found.failure).toMatchObject({ type, code: 'FLEET_E_TEST_BOOM', retryable: true, attempts: 1 })
      const s = await snapshot(lb)
      expect(s.jobs?.types.find((t) => t.type === type)).toMatchObject({ failed: 1 })

      // Refusals first: each with its code, none touching the job.
      // node:http, which sends Host, Origin and Sec-Fetch-Site as given (fetch would not).
      const viaHeaders = async (headers: Record<string, string>) => {
        const r = await get(lb.adminPort, '/dashboard/jobs/retry', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ type, id: 'dash.test-1' }),
        })
        return new Response(r.body, { status: r.status })
      }
      const cases: [() => Promise<Response>, number, string][] = [
        [
          () =>
            fetch(admin(lb, '/dashboard/jobs/retry'), {
              method: 'POST',
              body: '{}',
              headers: { 'content-type': 'text/plain' },
            }),
          415,
          'FLEET_E_DASHBOARD_UNSUPPORTED_MEDIA_TYPE',
        ],
        [() => post(lb, '{not json'), 400, 'FLEET_E_DASHBOARD_BAD_REQUEST'],
        [() => post(lb, JSON.stringify({ type, id: '' })), 400, 'FLEET_E_DASHBOARD_BAD_REQUEST'],
        [() => post(lb, 'x'.repeat(5000)), 400, 'FLEET_E_DASHBOARD_BAD_REQUEST'],
        [
          () => post(lb, JSON.stringify({ type, id: 'dash.test-nope' })),
          404,
          'FLEET_E_DASHBOARD_JOB_NOT_FOUND',
        ],
        [() => viaHeaders({ origin: 'http://evil.example' }), 403, 'FLEET_E_DASHBOARD_FORBIDDEN'],
        [() => viaHeaders({ 'sec-fetch-site': 'cross-site' }), 403, 'FLEET_E_DASHBOARD_FORBIDDEN'],
        // Refused by the admin port itself, before the dashboard: a DNS-rebound page names its own host.
        [() => viaHeaders({ host: 'evil.example' }), 403, 'FLEET_E_LB_ADMIN_FORBIDDEN'],
      ]
      for (const [p, status, code] of cases) {
        const res = await p()
        expect(res.status, code).toBe(status)
        expect(await codeOf(res)).toBe(code)
      }
      // A load balancer without DATABASE_URL cannot clear the job's record: it refuses rather than replay.
      const kept = lines // start() gives the log sink a new array: keep this test's lines in one
      const noDb = await start({ databaseUrl: undefined })
      lines = kept
      const refused = await post(noDb, JSON.stringify({ type, id: 'dash.test-1' }))
      expect(refused.status).toBe(503)
      expect((await bodyOf(refused)).error).toMatchObject({
        code: 'FLEET_E_DASHBOARD_UNAVAILABLE',
        message: expect.stringContaining('DATABASE_URL'),
      })
      expect(await job.getState()).toBe('failed')

      const ok = await post(lb, JSON.stringify({ type, id: 'dash.test-1' }), { 'x-fleet-operator': 'alice' })
      expect(ok.status).toBe(200)
      expect(await ok.json()).toEqual({ retried: { type, id: 'dash.test-1', attemptsBefore: 1 } })
      await until(async () => (await job.getState()) === 'completed', 10_000, 'the retried job to complete')
      expect(runs).toBe(2)
      const { rowCount } = await ctx.pool.query('SELECT 1 FROM fleet_jobs WHERE id = $1', ['dash.test-1'])
      expect(rowCount).toBe(0)
      const again = await post(lb, JSON.stringify({ type, id: 'dash.test-1' }))
      expect(again.status).toBe(409)
      expect(await codeOf(again)).toBe('FLEET_E_DASHBOARD_JOB_NOT_FAILED')

      const audit = lines.filter((l) => l.audit === true)
      const done = audit.find((l) => l.outcome === 'retried')
      expect(done).toMatchObject({
        action: 'job.retry',
        job: { type, id: 'dash.test-1' },
        who: { address: '127.0.0.1', operator: 'alice', auth: 'loopback' },
        failedWith: 'FLEET_E_TEST_BOOM',
      })
      expect(typeof done?.at).toBe('string')
      expect(audit.filter((l) => l.outcome === 'refused').map((l) => l.code)).toEqual(
        expect.arrayContaining(['FLEET_E_DASHBOARD_FORBIDDEN', 'FLEET_E_DASHBOARD_JOB_NOT_FAILED']),
      )
    } finally {
      await worker.close()
      await queue.obliterate({ force: true }).catch(() => {})
      await queue.close()
    }
  })

  it('with a token, acts only for it', async () => {
    const token = 'a-token-of-twenty-chars'
    const guarded = await start({ token })
    const body = JSON.stringify({ type: 'dash.none', id: 'dash.none-1' })
    const none = await post(guarded, body)
    expect(none.status).toBe(403)
    expect((await bodyOf(none)).error.message).toMatch(/needs the dashboard token/)
    const wrong = await post(guarded, body, { authorization: 'Bearer a-token-of-twenty-chaRS' })
    expect(wrong.status).toBe(403)
    const right = await post(guarded, body, { authorization: `Bearer ${token}` })
    expect(right.status).toBe(404) // let in; there is no such job
    expect((await snapshot(guarded)).actions).toEqual({ retry: true, token: true })
  })

  it('keeps answering with a clear banner when the store and cache Redis are away', async () => {
    const away = await start({ redisUrl: 'redis://127.0.0.1:1', cacheRedisUrl: 'redis://127.0.0.1:1' })
    const s = await snapshot(away)
    expect(s.sources.store?.ok).toBe(false)
    expect(s.sources.cacheRedis?.ok).toBe(false)
    expect(s.jobs).toBeNull()
    expect(s.banners.map((b) => b.text).join('\n')).toMatch(/store Redis does not answer/)
    expect(s.banners.map((b) => b.text).join('\n')).toMatch(/cache Redis does not answer/)
    expect(s.web).toHaveLength(2) // the LB's own view goes on
    const res = await post(away, JSON.stringify({ type: 'a', id: 'b' }))
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('2')
    expect(await codeOf(res)).toBe('FLEET_E_DASHBOARD_UNAVAILABLE')
  })

  it('refuses pages over FLEET_DASHBOARD_MAX_CLIENTS', async () => {
    const small = await start({ maxClients: 1 })
    const first = await fetch(admin(small, '/dashboard/events'))
    expect(first.status).toBe(200)
    const second = await fetch(admin(small, '/dashboard/events'))
    expect(second.status).toBe(503)
    expect(await codeOf(second)).toBe('FLEET_E_DASHBOARD_BUSY')
    await first.body?.cancel()
  })

  it('lists the registry as Prometheus HTTP service discovery targets', async () => {
    const res = await fetch(admin(lb, '/dashboard/targets'))
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual([]) // fixed upstreams, nothing registered under this prefix
  })
})
