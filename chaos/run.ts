/**
 * The chaos suite (`npm run chaos`): the whole stack as `fleet up` runs it (3 web servers, 2 workers, the
 * embedded PostgreSQL and two redis-servers, on free ports and a fresh data folder), under steady mixed
 * load through the load balancer, takes one fault after another and prints, per fault, what users saw:
 *
 *   requests, failed anonymous catalog reads, failed logged-in reads, failed writes, the error codes,
 *   the longest answer, how long failures went on, how long the stack took to be whole again, and the
 *   acknowledged writes and jobs lost, jobs run again, effects applied twice.
 *
 * Faults: SIGKILL and SIGSTOP (held CHAOS_HOLD, 10 s) of a web server, a worker (mid-job: the time from its
 * death to the job running again is measured), the store Redis, the cache Redis, PostgreSQL (the whole
 * process tree); a rolling restart (`fleet restart web`); SIGKILL of `fleet up` itself (processes left
 * after it, then a new `fleet up` on the same folder and ports). The table goes to stdout and to
 * chaos/last-run.md; the exit code is 1 when a target is missed (see TARGETS below).
 *
 * Bounded: each fault waits at most 60 s for the stack to be whole again; the run takes about 7 minutes.
 * Env: CHAOS_HOLD (10s), CHAOS_ONLY (comma-separated fault names), CHAOS_KEEP=1 (keep the data folder).
 * Build first: `npm run chaos` does (`prechaos`).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import pg from 'pg'
import sharp from 'sharp'
import { parseDuration } from '../src/config/define.js'
import { scratchUpEnv } from '../src/stack/scratch.js'
import type { StatusReport } from '../src/stack/status.js'
import { alive, processTree } from '../test/support/processes.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const cli = path.join(root, 'dist', 'cli.js')
const appPath = path.join(root, 'chaos', 'app.ts')
const HOLD_MS = parseDuration(process.env.CHAOS_HOLD ?? '10s')
const ONLY = (process.env.CHAOS_ONLY ?? '').split(',').filter(Boolean)
const RECOVER_MS = 60_000
const REQUEST_TIMEOUT_MS = 40_000
/** Products the anonymous readers ask for: warmed into the cache before the first fault. */
const HOT_PRODUCTS = 40
const ADMIN = { email: 'chaos-admin@example.com', password: 'chaos admin password' }

const t0 = Date.now()
const log = (msg: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------------------------------------- the stack

interface Up {
  proc: ChildProcess
  output: () => string
  exited: Promise<void>
}

let env: Record<string, string>
let base: string
const seenPids = new Set<number>()

function startUp(): Up {
  const proc = spawn(process.execPath, [cli, 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  for (const s of [proc.stdout, proc.stderr]) s?.on('data', (c: Buffer) => (out = (out + c).slice(-20_000)))
  const exited = new Promise<void>((r) => proc.once('exit', () => r()))
  return { proc, output: () => out, exited }
}

async function status(): Promise<StatusReport> {
  const { stdout } = await run(process.execPath, [cli, 'status', '--json'], { env, timeout: 10_000 })
  const report = JSON.parse(stdout) as StatusReport
  for (const r of report.rows) if (r.pid) seenPids.add(r.pid)
  return report
}

/** Polls `fn` every 100 ms until it returns a value or `ms` passed (then undefined). */
async function until<T>(fn: () => Promise<T | undefined>, ms: number, every = 100): Promise<T | undefined> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    await sleep(every)
  }
  return undefined
}

/** Every child ready (and, when given, `name` under another pid than `oldPid`). */
async function whole(name?: string, oldPid?: number): Promise<StatusReport | undefined> {
  const s = await status()
  if (s.phase !== 'running' || !s.rows.every((r) => r.state === 'ready')) return undefined
  if (name && oldPid && s.rows.find((r) => r.name === name)?.pid === oldPid) return undefined
  return s
}

async function pidOf(name: string): Promise<number> {
  const row = (await status()).rows.find((r) => r.name === name)
  if (!row?.pid) throw new Error(`no pid for ${name}`)
  return row.pid
}

// ----------------------------------------------------------------------------------------------- the load

type Kind = 'catalog' | 'session' | 'write' | 'upload' | 'job'

interface Sample {
  kind: Kind
  start: number
  ms: number
  status: number
  code: string
}

const samples: Sample[] = []

interface Answer {
  status: number
  code: string
  body: unknown
  headers: Headers
}

async function call(
  kind: Kind | undefined,
  method: string,
  url: string,
  init: RequestInit = {},
): Promise<Answer> {
  const start = Date.now()
  let answer: Answer
  try {
    const res = await fetch(`${base}${url}`, {
      method,
      ...init,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
    const text = await res.text()
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      // not JSON
    }
    const code = (body as { error?: { code?: string } })?.error?.code ?? (res.ok ? '' : `HTTP_${res.status}`)
    answer = { status: res.status, code, body, headers: res.headers }
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } }
    answer = {
      status: 0,
      code: e.name === 'TimeoutError' ? 'CLIENT_TIMEOUT' : (e.cause?.code ?? e.name),
      body: undefined,
      headers: new Headers(),
    }
  }
  if (kind) samples.push({ kind, start, ms: Date.now() - start, status: answer.status, code: answer.code })
  return answer
}

const json = (body: unknown, cookie?: string, extra: Record<string, string> = {}): RequestInit => ({
  headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}), ...extra },
  body: JSON.stringify(body),
})

function cookieOf(a: Answer, previous = ''): string {
  const set = a.headers.getSetCookie()
  return set.length > 0 ? set.map((c) => c.split(';')[0]).join('; ') : previous
}

async function login(email: string, password: string): Promise<string> {
  const a = await call(undefined, 'POST', '/api/session', json({ email, password }))
  if (a.status !== 200) throw new Error(`login of ${email}: ${a.status} ${a.code}`)
  return cookieOf(a)
}

/** Acknowledged writes, to check after the run that each is still there. */
interface Writer {
  email: string
  cookie: string
  /** Cart: per product, the last acknowledged quantity and the quantities tried after it. */
  cart: Map<number, { acked: number; ackedAt: number; since: number[] }>
  reviews: { id: number; productId: number; at: number }[]
  nextReview: number
}

interface AcceptedJob {
  id: string
  cookie: string
  at: number
  kind: 'chaos' | 'thumbnails'
}

const writers: Writer[] = []
const jobs: AcceptedJob[] = []
let adminCookie = ''
let visitorCookie = ''
const productIds: number[] = []
let png: Buffer
let loading = false

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)] as T
}

async function catalogReader(): Promise<void> {
  while (loading) {
    const r = Math.random()
    const url =
      r < 0.5
        ? `/api/products/${pick(productIds.slice(0, HOT_PRODUCTS))}`
        : r < 0.85
          ? '/api/products?limit=10'
          : '/api/categories'
    await call('catalog', 'GET', url)
    await sleep(5)
  }
}

async function sessionReader(): Promise<void> {
  while (loading) {
    const w = pick(writers)
    await call('session', 'GET', Math.random() < 0.5 ? '/api/me' : '/api/cart', {
      headers: { cookie: w.cookie },
    })
    await sleep(20)
  }
}

async function writerLoop(w: Writer): Promise<void> {
  let quantity = 1
  while (loading) {
    if (Math.random() < 0.9) {
      const productId = pick(productIds.slice(0, 20))
      const q = quantity++
      const entry = w.cart.get(productId) ?? { acked: 0, ackedAt: 0, since: [] }
      w.cart.set(productId, entry)
      entry.since.push(q)
      const a = await call('write', 'PUT', `/api/cart/items/${productId}`, json({ quantity: q }, w.cookie))
      if (a.status === 200) {
        entry.acked = q
        entry.ackedAt = Date.now()
        entry.since = []
      }
    } else {
      // One review per user and product: each writer walks the catalog once (a repeat would be a 409).
      if (w.nextReview >= productIds.length) continue
      const productId = productIds[w.nextReview++] as number
      const a = await call(
        'write',
        'POST',
        `/api/products/${productId}/reviews`,
        json({ rating: 1 + (productId % 5), body: `chaos review by ${w.email}` }, w.cookie),
      )
      if (a.status === 201) w.reviews.push({ id: (a.body as { id: number }).id, productId, at: Date.now() })
    }
    await sleep(40)
  }
}

async function uploader(): Promise<void> {
  while (loading) {
    const productId = pick(productIds.slice(HOT_PRODUCTS))
    const a = await call('upload', 'PUT', `/api/products/${productId}/image`, {
      headers: { 'content-type': 'image/png', cookie: adminCookie, 'idempotency-key': randomUUID() },
      body: png,
    })
    if (a.status === 202)
      jobs.push({
        id: (a.body as { id: string }).id,
        cookie: adminCookie,
        at: Date.now(),
        kind: 'thumbnails',
      })
    await sleep(1_500)
  }
}

async function submitter(): Promise<void> {
  while (loading) {
    const a = await call(
      'job',
      'POST',
      '/chaos/jobs',
      json({ ms: 300, steps: 5 }, visitorCookie, { 'idempotency-key': randomUUID() }),
    )
    if (a.status === 202) {
      visitorCookie = cookieOf(a, visitorCookie)
      jobs.push({ id: (a.body as { id: string }).id, cookie: visitorCookie, at: Date.now(), kind: 'chaos' })
    }
    await sleep(400)
  }
}

// --------------------------------------------------------------------------------------------- the faults

interface FaultResult {
  /** When the stack was whole again (epoch ms). */
  wholeAt?: number
  notes: string[]
}

interface Fault {
  name: string
  what: string
  inject: () => Promise<FaultResult>
}

let db: pg.Pool
let up: Up

/** A chaos job executing on `instance` now, with at least `leftMs` of its run ahead. */
async function jobRunningOn(instance: string, leftMs: number): Promise<string | undefined> {
  const { rows } = await db.query<{ job_id: string }>(
    `SELECT r.job_id FROM chaos_runs r
      WHERE r.instance = $1 AND r.started_at > clock_timestamp() - make_interval(secs => $2::float / 1000)
        AND NOT EXISTS (SELECT 1 FROM chaos_effects e WHERE e.job_id = r.job_id)
      ORDER BY r.started_at DESC LIMIT 1`,
    [instance, 1_500 - leftMs],
  )
  return rows[0]?.job_id
}

/** Time from `since` (epoch ms) to the next execution of `jobId` starting, or undefined within `ms`. */
async function rerunAfter(jobId: string, since: number, ms: number): Promise<number | undefined> {
  const at = await until(
    async () => {
      const { rows } = await db.query<{ at: Date }>(
        'SELECT started_at AS at FROM chaos_runs WHERE job_id = $1 AND started_at > $2 ORDER BY started_at LIMIT 1',
        [jobId, new Date(since)],
      )
      return rows[0]?.at.getTime()
    },
    ms,
    25,
  )
  return at === undefined ? undefined : at - since
}

const stopFor = async (pids: () => Promise<number[]>, notes: string[]): Promise<void> => {
  const list = await pids()
  for (const p of list) process.kill(p, 'SIGSTOP')
  await sleep(HOLD_MS)
  // The tree again: a process forked meanwhile (none expected: the parent is stopped) resumes too.
  for (const p of new Set([...list, ...list.flatMap((x) => processTree(x))])) {
    try {
      process.kill(p, 'SIGCONT')
    } catch {
      // gone
    }
  }
  notes.push(`stopped ${HOLD_MS / 1000} s`)
}

function killFault(name: string): Fault {
  return {
    name: `SIGKILL ${name}`,
    what: `kill -9 ${name}`,
    async inject() {
      const pid = await pidOf(name)
      process.kill(pid, 'SIGKILL') // PostgreSQL: the postmaster, as the OOM killer would; its backends follow
      const s = await until(() => whole(name, pid), RECOVER_MS, 200)
      return { wholeAt: s ? Date.now() : undefined, notes: [] }
    },
  }
}

function stopFault(name: string): Fault {
  return {
    name: `SIGSTOP ${name}`,
    what: `kill -STOP ${name} for ${HOLD_MS / 1000} s, then -CONT`,
    async inject() {
      const notes: string[] = []
      const pid = await pidOf(name)
      await stopFor(async () => (name === 'postgres' ? processTree(pid) : [pid]), notes)
      const s = await until(() => whole(), RECOVER_MS, 200)
      return { wholeAt: s ? Date.now() : undefined, notes }
    },
  }
}

const deathToRerun: number[] = []

function workerFault(signal: 'SIGKILL' | 'SIGSTOP'): Fault {
  return {
    name: `${signal} worker-1`,
    what:
      signal === 'SIGKILL'
        ? 'kill -9 worker-1 mid-job'
        : `kill -STOP worker-1 mid-job for ${HOLD_MS / 1000} s`,
    async inject() {
      const notes: string[] = []
      const jobId = await until(() => jobRunningOn('worker-1', 900), 20_000, 50)
      const pid = await pidOf('worker-1')
      const at = Date.now()
      if (signal === 'SIGKILL') {
        process.kill(pid, 'SIGKILL')
        if (jobId) {
          const ms = await rerunAfter(jobId, at, 30_000)
          if (ms !== undefined) deathToRerun.push(ms)
          notes.push(
            ms === undefined
              ? `its job ${jobId} did not run again within 30 s`
              : `death to its job running again: ${ms} ms`,
          )
        } else notes.push('no chaos job ran on worker-1 within 20 s')
        const s = await until(() => whole('worker-1', pid), RECOVER_MS, 200)
        return { wholeAt: s ? Date.now() : undefined, notes }
      }
      await stopFor(async () => [pid], notes)
      if (jobId) {
        const effects = await until(async () => {
          const { rows } = await db.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM chaos_effects WHERE job_id = $1',
            [jobId],
          )
          return rows[0].n > 0 ? rows[0].n : undefined
        }, 20_000)
        notes.push(`its job ${effects ? 'finished after SIGCONT' : 'had not finished 20 s after SIGCONT'}`)
      }
      const s = await until(() => whole(), RECOVER_MS, 200)
      return { wholeAt: s ? Date.now() : undefined, notes }
    },
  }
}

const rollingRestart: Fault = {
  name: 'rolling restart',
  what: '`fleet restart web`',
  async inject() {
    const r = await run(process.execPath, [cli, 'restart', 'web'], { env, timeout: 120_000 })
    const s = await until(() => whole(), RECOVER_MS, 200)
    return { wholeAt: s ? Date.now() : undefined, notes: [r.stdout.trim().split('\n').pop() ?? ''] }
  },
}

let leftAfterKill = -1

const killUp: Fault = {
  name: 'SIGKILL fleet up',
  what: 'kill -9 the supervisor, then `fleet up` again',
  async inject() {
    const before = (await status()).rows.filter((r) => r.pid && r.name !== 'supervisor')
    const tree = before.flatMap((r) => processTree(r.pid as number))
    up.proc.kill('SIGKILL')
    const killedAt = Date.now()
    await until(async () => (tree.some(alive) ? undefined : true), 20_000, 100)
    const left = tree.filter(alive)
    leftAfterKill = left.length
    const goneMs = Date.now() - killedAt
    for (const p of left) process.kill(p, 'SIGKILL')
    up = startUp()
    const s = await until(
      async () => ((await call(undefined, 'GET', '/api/categories')).status === 200 ? whole() : undefined),
      90_000,
      200,
    )
    return {
      wholeAt: s ? Date.now() : undefined,
      notes: [
        `${left.length} of ${tree.length} processes left ${goneMs} ms after the kill`,
        `a new fleet up answered after ${((Date.now() - killedAt) / 1000).toFixed(1)} s`,
      ],
    }
  },
}

const FAULTS: Fault[] = [
  killFault('web-1'),
  stopFault('web-1'),
  workerFault('SIGKILL'),
  workerFault('SIGSTOP'),
  killFault('redis-store'),
  stopFault('redis-store'),
  killFault('redis-cache'),
  stopFault('redis-cache'),
  killFault('postgres'),
  stopFault('postgres'),
  rollingRestart,
  killUp,
].filter((f) => ONLY.length === 0 || ONLY.some((o) => f.name.includes(o)))

// ---------------------------------------------------------------------------------------------- the report

interface Phase {
  fault: Fault
  start: number
  end: number
  result: FaultResult
}

interface Row {
  fault: string
  requests: number
  failedCatalog: number
  failedSession: number
  failedWrites: number
  codes: string
  longestMs: number
  longestCatalogMs: number
  failingForMs: number
  wholeInMs: number | undefined
  writesLost: number
  jobsLost: number
  jobsRerun: number
  effectsTwice: number
  notes: string
}

const failed = (s: Sample) => s.status === 0 || s.status >= 500 || s.status === 429

async function jobOutcomes(): Promise<Map<string, { state: string; attempts: number; effects: number }>> {
  const out = new Map<string, { state: string; attempts: number; effects: number }>()
  const { rows } = await db.query<{ job_id: string; n: number }>(
    'SELECT job_id, count(*)::int AS n FROM chaos_effects GROUP BY job_id',
  )
  const effects = new Map(rows.map((r) => [r.job_id, r.n]))
  for (const j of jobs) {
    const a = await call(undefined, 'GET', `/api/jobs/${j.id}`, { headers: { cookie: j.cookie } })
    const view = a.body as { state?: string; attempts?: number }
    out.set(j.id, {
      state: view?.state ?? `HTTP ${a.status}`,
      attempts: view?.attempts ?? 0,
      effects: effects.get(j.id) ?? 0,
    })
  }
  return out
}

async function lostWrites(): Promise<{ at: number; what: string }[]> {
  const lost: { at: number; what: string }[] = []
  const { rows } = await db.query<{ id: number }>('SELECT id FROM reviews')
  const reviewIds = new Set(rows.map((r) => Number(r.id)))
  for (const w of writers) {
    for (const r of w.reviews)
      if (!reviewIds.has(r.id)) lost.push({ at: r.at, what: `review ${r.id} of ${w.email}` })
    const cart = await call(undefined, 'GET', '/api/cart', { headers: { cookie: w.cookie } })
    if (cart.status !== 200) {
      lost.push({ at: Date.now(), what: `the session of ${w.email} (${cart.status} ${cart.code})` })
      continue
    }
    const items = new Map(
      (cart.body as { items: { productId: number; quantity: number }[] }).items.map((i) => [
        i.productId,
        i.quantity,
      ]),
    )
    for (const [productId, e] of w.cart) {
      if (e.acked === 0) continue
      const q = items.get(productId) ?? 0
      // A write that failed for the client may still have applied: only a value older than the ack is a loss.
      if (q !== e.acked && !e.since.includes(q))
        lost.push({
          at: e.ackedAt,
          what: `cart of ${w.email}: product ${productId} is ${q}, acked ${e.acked}`,
        })
    }
  }
  return lost
}

function table(rows: Row[]): string {
  const head =
    '| fault | requests | failed catalog reads | failed logged-in reads | failed writes | error codes | longest catalog read | longest answer | failing for | whole again in | acked writes lost | jobs lost | jobs run again | effects twice | notes |'
  const sep = `|${' --- |'.repeat(15)}`
  const s = (ms: number | undefined) => (ms === undefined ? 'not within 60 s' : `${(ms / 1000).toFixed(1)} s`)
  const lines = rows.map(
    (r) =>
      `| ${r.fault} | ${r.requests} | ${r.failedCatalog} | ${r.failedSession} | ${r.failedWrites} | ${r.codes || '-'} | ${s(r.longestCatalogMs)} | ${s(r.longestMs)} | ${s(r.failingForMs)} | ${s(r.wholeInMs)} | ${r.writesLost} | ${r.jobsLost} | ${r.jobsRerun} | ${r.effectsTwice} | ${r.notes} |`,
  )
  return [head, sep, ...lines].join('\n')
}

// ------------------------------------------------------------------------------------------------ the run

async function main(): Promise<number> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-chaos-'))
  await fs.chmod(dir, 0o755) // the embedded PostgreSQL runs as `postgres` under root
  env = await scratchUpEnv(dir, {
    FLEET_APP: appPath,
    FLEET_WEB: '3',
    FLEET_WORKERS: '2',
    FLEET_SEED_PRODUCTS: '300',
    FLEET_SEED_REVIEWS: '300',
    FLEET_ADMIN_EMAIL: ADMIN.email,
    FLEET_ADMIN_PASSWORD: ADMIN.password,
    FLEET_SHUTDOWN_TIMEOUT: '5s',
  })
  base = `http://127.0.0.1:${env.FLEET_PORT}`
  let code = 1
  try {
    code = await chaos(dir)
  } finally {
    loading = false
    if (up && up.proc.exitCode === null && up.proc.signalCode === null) {
      up.proc.kill('SIGTERM')
      await Promise.race([up.exited, sleep(30_000)])
    }
    // Only processes of this run: a pid seen earlier may belong to another program by now.
    const marks = [dir, cli, `:${env.FLEET_REDIS_PORT}`, `:${env.FLEET_CACHE_REDIS_PORT}`]
    for (const pid of seenPids) {
      const cmd = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
      if (marks.some((m) => cmd.includes(m))) process.kill(pid, 'SIGKILL')
    }
    await db?.end().catch(() => undefined)
    if (process.env.CHAOS_KEEP === '1') log(`data folder kept: ${dir}`)
    else await fs.rm(dir, { recursive: true, force: true })
  }
  return code
}

async function chaos(dir: string): Promise<number> {
  log(`fleet up --app chaos/app.ts in ${dir} (3 web servers, 2 workers), load balancer on ${base}`)
  up = startUp()
  const ready = await until(
    async () => ((await call(undefined, 'GET', '/api/categories')).status === 200 ? whole() : undefined),
    120_000,
    250,
  )
  if (!ready) throw new Error(`the stack did not start within 120 s\n${up.output()}`)
  db = new pg.Pool({
    connectionString: `postgres://postgres@127.0.0.1:${env.FLEET_PG_PORT}/fleet`,
    max: 2,
    connectionTimeoutMillis: 2_000,
    query_timeout: 5_000,
  })
  db.on('error', () => undefined)

  // Users, sessions, a warm cache.
  png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c63' } })
    .png()
    .toBuffer()
  adminCookie = await login(ADMIN.email, ADMIN.password)
  for (let i = 0; i < 3; i++) {
    const email = `chaos-writer-${i}-${Date.now()}@example.com`
    const password = 'chaos writer password'
    const a = await call(undefined, 'POST', '/api/users', json({ email, password }))
    if (a.status !== 201) throw new Error(`account ${email}: ${a.status} ${a.code}`)
    writers.push({
      email,
      cookie: await login(email, password),
      cart: new Map(),
      reviews: [],
      nextReview: i * 90,
    })
  }
  for (let cursor: string | null = '', n = 0; cursor !== null && n < 10; n++) {
    const page = await call(undefined, 'GET', `/api/products?limit=100${cursor ? `&cursor=${cursor}` : ''}`)
    const body = page.body as { items: { id: number }[]; nextCursor: string | null }
    productIds.push(...body.items.map((p) => p.id))
    cursor = body.nextCursor && encodeURIComponent(body.nextCursor)
  }
  for (const id of productIds.slice(0, HOT_PRODUCTS)) await call(undefined, 'GET', `/api/products/${id}`)
  log(`ready: ${writers.length} writers logged in, ${HOT_PRODUCTS} products warmed; starting the load`)

  loading = true
  const loops = [
    ...Array.from({ length: 4 }, () => catalogReader()),
    sessionReader(),
    ...writers.map((w) => writerLoop(w)),
    uploader(),
    submitter(),
  ]
  const phases: Phase[] = []
  const baseline: Fault = {
    name: 'none (baseline)',
    what: 'steady load',
    inject: async () => ({ wholeAt: Date.now(), notes: [] }),
  }
  for (const fault of [baseline, ...FAULTS]) {
    const start = Date.now()
    log(`${fault.name}: ${fault.what}`)
    const result = await fault
      .inject()
      .catch((err: Error) => ({ wholeAt: undefined, notes: [`failed: ${err.message}`] }))
    if (fault === baseline) await sleep(5_000)
    // Let the tail of the fault show: 3 s more of load after the stack is whole again.
    await sleep(3_000)
    const end = Date.now()
    phases.push({ fault, start, end, result })
    const inPhase = samples.filter((s) => s.start >= start && s.start < end)
    log(
      `  ${inPhase.length} requests, ${inPhase.filter(failed).length} failed; ${result.wholeAt ? `whole again after ${((result.wholeAt - start) / 1000).toFixed(1)} s` : 'NOT whole again'}${result.notes.length ? `; ${result.notes.join('; ')}` : ''}`,
    )
    if (!result.wholeAt) break
  }
  loading = false
  await Promise.all(loops)

  log('load stopped; waiting for every accepted job to end')
  await until(
    async () => {
      const o = await jobOutcomes()
      return [...o.values()].every((v) => ['completed', 'failed', 'cancelled'].includes(v.state))
        ? true
        : undefined
    },
    90_000,
    2_000,
  )
  const outcomes = await jobOutcomes()
  const lost = await lostWrites()

  const rows: Row[] = phases.map(({ fault, start, end, result }) => {
    const inPhase = samples.filter((s) => s.start >= start && s.start < end)
    const bad = inPhase.filter(failed)
    const codes = new Map<string, number>()
    for (const s of bad) codes.set(s.code, (codes.get(s.code) ?? 0) + 1)
    const phaseJobs = jobs.filter((j) => j.at >= start && j.at < end)
    return {
      fault: fault.name,
      requests: inPhase.length,
      failedCatalog: bad.filter((s) => s.kind === 'catalog').length,
      failedSession: bad.filter((s) => s.kind === 'session').length,
      failedWrites: bad.filter((s) => s.kind !== 'catalog' && s.kind !== 'session').length,
      codes: [...codes]
        .sort((a, b) => b[1] - a[1])
        .map(([c, n]) => `${c} x${n}`)
        .join(', '),
      longestMs: Math.max(0, ...inPhase.map((s) => s.ms)),
      longestCatalogMs: Math.max(0, ...inPhase.filter((s) => s.kind === 'catalog').map((s) => s.ms)),
      failingForMs: bad.length
        ? Math.max(...bad.map((s) => s.start + s.ms)) - Math.min(...bad.map((s) => s.start))
        : 0,
      wholeInMs: result.wholeAt === undefined ? undefined : result.wholeAt - start,
      writesLost: lost.filter((l) => l.at >= start && l.at < end).length,
      jobsLost: phaseJobs.filter((j) => outcomes.get(j.id)?.state !== 'completed').length,
      jobsRerun: phaseJobs.filter((j) => (outcomes.get(j.id)?.attempts ?? 0) > 1).length,
      effectsTwice: phaseJobs.filter((j) => (outcomes.get(j.id)?.effects ?? 0) > 1).length,
      notes: result.notes.join('; '),
    }
  })

  // Jobs accepted between phases (none: phases are back to back) or before the first one count too.
  const totalLost = lost.length
  const jobsLost = jobs.filter((j) => outcomes.get(j.id)?.state !== 'completed')
  const twice = jobs.filter((j) => (outcomes.get(j.id)?.effects ?? 0) > 1)
  const chaosJobs = jobs.filter((j) => j.kind === 'chaos')
  const noEffect = chaosJobs.filter(
    (j) => outcomes.get(j.id)?.state === 'completed' && outcomes.get(j.id)?.effects === 0,
  )

  const misses: string[] = []
  for (const r of rows) {
    if (r.fault !== 'SIGKILL fleet up' && r.failedCatalog > 0)
      misses.push(`${r.fault}: ${r.failedCatalog} failed catalog reads (target 0)`)
    if (r.wholeInMs === undefined) misses.push(`${r.fault}: not whole again within 60 s`)
  }
  if (totalLost > 0)
    misses.push(`${totalLost} acknowledged writes lost (target 0): ${lost.map((l) => l.what).join('; ')}`)
  if (jobsLost.length > 0)
    misses.push(
      `${jobsLost.length} accepted jobs did not complete (target 0): ${jobsLost.map((j) => `${j.id} ${outcomes.get(j.id)?.state}`).join(', ')}`,
    )
  if (twice.length > 0) misses.push(`${twice.length} jobs applied their effects twice (target 0)`)
  if (noEffect.length > 0) misses.push(`${noEffect.length} completed chaos jobs left no effect row`)
  for (const ms of deathToRerun)
    if (ms > 5_000) misses.push(`a dead worker's job ran again after ${ms} ms (target <= 5 s)`)
  if (leftAfterKill > 0) misses.push(`${leftAfterKill} processes left after SIGKILL of fleet up (target 0)`)

  const summary = [
    `${samples.length} requests in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${jobs.length} jobs accepted (${chaosJobs.length} chaos.work, ${jobs.length - chaosJobs.length} thumbnails), ${jobsLost.length} not completed, ${jobs.filter((j) => (outcomes.get(j.id)?.attempts ?? 0) > 1).length} ran more than once (attempts > 1), ${twice.length} applied twice`,
    `acknowledged writes checked at the end: ${writers.reduce((n, w) => n + w.reviews.length + [...w.cart.values()].filter((e) => e.acked > 0).length, 0)} (reviews and last cart quantities), ${totalLost} lost; sessions of ${writers.length} writers: ${lost.some((l) => l.what.startsWith('the session')) ? 'LOST' : 'kept'}`,
    `a dead worker's job running again: ${deathToRerun.length ? deathToRerun.map((ms) => `${ms} ms`).join(', ') : 'not measured'}; processes left after SIGKILL of fleet up: ${leftAfterKill < 0 ? 'not measured' : leftAfterKill}`,
    misses.length ? `TARGETS MISSED:\n- ${misses.join('\n- ')}` : 'every target met',
  ]
  const report = [
    `# Chaos run, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `\`npm run chaos\`: 3 web servers, 2 workers, load through the LB (4 anonymous catalog readers, 1 logged-in reader, 3 writers, 1 image uploader, 1 job submitter); faults held ${HOLD_MS / 1000} s; ${os.cpus().length} cores.`,
    '',
    table(rows),
    '',
    ...summary.map((l) => `${l}  `),
    '',
  ].join('\n')
  console.log(`\n${table(rows)}\n\n${summary.join('\n')}`)
  await fs.writeFile(path.join(root, 'chaos', 'last-run.md'), report)
  log('written to chaos/last-run.md')
  return misses.length ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
