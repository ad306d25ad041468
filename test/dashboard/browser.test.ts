/**
 * The dashboard in a real browser (headless Debian chromium, driven by playwright-core) in front of a real
 * stack: `node dist/cli.js up` (built by `pretest`) on free ports, with its own PostgreSQL and two Redis
 * servers, 3 web servers and a worker. The page loads with every process green, its numbers move under load,
 * a SIGKILLed web server turns red and comes back green, and the Retry button retries a real failed job (and
 * the LB's log has the audit line). Screenshots and the page's figures are saved to test-artifacts/.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureProgram } from '../../src/stack/programs.js'
import type { StatusReport } from '../../src/stack/status.js'
import { quickStack } from '../support/stack.js'

const run = promisify(execFile)
const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))
const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url))
const CHROMIUM = '/usr/bin/chromium'

let dir: string
let env: Record<string, string>
let up: ChildProcess | undefined
let output = ''
let browser: Browser | undefined
let page: Page
let app: string
let admin: string
let redis: Redis | undefined
let queue: Queue | undefined
let worker: Worker | undefined
let retried = 0
/** A process this test SIGSTOPped, continued in afterAll should the test fail first. */
let stopped: number | undefined
const figures: Record<string, unknown> = {}
const seenPids = new Set<number>()

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms\n${output.slice(-3000)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

async function status(): Promise<StatusReport> {
  const { stdout } = await run(process.execPath, [cli, 'status', '--json'], { env })
  const report = JSON.parse(stdout) as StatusReport
  for (const r of report.rows) if (r.pid) seenPids.add(r.pid)
  return report
}

/** Load through the LB from `n` loops until `stop()` (bounded: at most `ms`). */
function load(n: number, ms: number): { stop: () => Promise<number> } {
  let stopped = false
  let count = 0
  const end = Date.now() + ms
  const loops = Array.from({ length: n }, async () => {
    while (!stopped && Date.now() < end) {
      const res = await fetch(`${app}/api/products?limit=2`).catch(() => undefined)
      await res?.arrayBuffer()
      count++
    }
  })
  return {
    async stop() {
      stopped = true
      await Promise.all(loops)
      return count
    },
  }
}

const num = async (selector: string) => Number(((await page.textContent(selector)) ?? '').replace(/,/g, ''))

beforeAll(async () => {
  // Like redis-server for the stack: installed with apt-get when missing (as root), so `npm test` sets itself up.
  if (!existsSync(CHROMIUM))
    ensureProgram(
      { command: 'chromium', pkg: 'chromium', otherwise: 'run the tests where it is installed' },
      (l) => console.log(l),
    )
  await fs.mkdir(artifacts, { recursive: true })
  ;({ dir, env } = await quickStack('dashboard', { FLEET_LOG_LEVEL: 'info' }))
  app = `http://127.0.0.1:${env.FLEET_PORT}`
  admin = `http://127.0.0.1:${env.FLEET_LB_ADMIN_PORT}`
  up = spawn(process.execPath, [cli, 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  up.stdout?.on('data', (c: Buffer) => {
    output += c.toString()
  })
  up.stderr?.on('data', (c: Buffer) => {
    output += c.toString()
  })
  await until(
    'the stack answering through the LB',
    async () => ((await fetch(`${app}/api/categories`)).ok ? true : undefined),
    120_000,
  )
  await until(
    'every process ready',
    async () => ((await status()).rows.every((r) => r.state === 'ready') ? true : undefined),
    60_000,
  )

  // A job that fails once, in a queue of the stack's store Redis: this test process is its worker.
  redis = new Redis(`redis://127.0.0.1:${env.FLEET_REDIS_PORT}`, { maxRetriesPerRequest: null })
  redis.on('error', () => {}) // the stack stops before this test's connections do
  const prefix = 'fleet:{jobs}'
  queue = new Queue('dashboard.probe', { connection: redis, prefix })
  worker = new Worker(
    'dashboard.probe',
    async () => {
      retried++
      if (retried === 1) throw new Error('FLEET_E_PROBE_BROKEN: the probe failed on purpose')
      return 'ok'
    },
    { connection: redis.duplicate().on('error', () => {}), prefix },
  )
  await queue.add('dashboard.probe', {}, { jobId: 'dashboard.probe-1', attempts: 1 })

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
}, 240_000)

afterAll(async () => {
  if (stopped) process.kill(stopped, 'SIGCONT')
  await fs
    .writeFile(path.join(artifacts, 'dashboard-figures.json'), `${JSON.stringify(figures, null, 2)}\n`)
    .catch(() => {})
  await browser?.close()
  await worker?.close()
  await queue?.close()
  redis?.disconnect()
  if (up && up.exitCode === null) {
    up.kill('SIGTERM')
    await Promise.race([new Promise((r) => up?.once('exit', r)), new Promise((r) => setTimeout(r, 60_000))])
  }
  if (up && up.exitCode === null && up.signalCode === null) up.kill('SIGKILL')
  const marks = [dir, cli]
  for (const pid of seenPids) {
    const cmd = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (marks.some((m) => cmd.includes(m))) process.kill(pid, 'SIGKILL')
  }
  await fs.rm(dir, { recursive: true, force: true })
}, 120_000)

describe('the dashboard in a browser', () => {
  it('loads with the stack running: every process green, from the admin port', async () => {
    const bytes = new Map<string, number>()
    page.on('response', async (res) => {
      if (!res.url().startsWith(admin) || res.url().endsWith('/events')) return
      const size = Number(
        res.headers()['content-length'] ?? (await res.body().catch(() => Buffer.alloc(0))).length,
      )
      bytes.set(new URL(res.url()).pathname, size)
    })
    await page.goto(`${admin}/dashboard/`)
    await page.waitForSelector('#conn.live', { timeout: 15_000 })
    for (const id of [
      'lb-1',
      'web-1',
      'web-2',
      'web-3',
      'worker-1',
      'supervisor',
      'postgres',
      'redis-store',
      'redis-cache',
    ]) {
      await page.waitForSelector(`tr[data-process="${id}"][data-health="up"]`, { timeout: 10_000 })
    }
    expect(await page.locator('#banners div').count()).toBe(0)
    // A string, evaluated in the page (this file is not typed for the DOM).
    const paint = (await page.evaluate(
      "Object.fromEntries(performance.getEntriesByType('paint').map((e) => [e.name, Math.round(e.startTime)]))",
    )) as Record<string, number>
    expect(paint['first-contentful-paint']).toBeGreaterThan(0)
    figures.firstPaintMs = paint['first-paint']
    figures.firstContentfulPaintMs = paint['first-contentful-paint']
    figures.pageBytesGzip = [...bytes.values()].reduce((n, b) => n + b, 0)
    figures.pageFiles = Object.fromEntries(bytes)
    // The public port does not serve it: there /dashboard/ is the app's own path.
    expect((await fetch(`${app}/dashboard/`)).headers.get('content-type')).not.toMatch(/text\/html/)
  })

  it('moves its numbers under load', async () => {
    const before = await until(
      'a request rate on the page',
      async () => {
        const v = await num('#lb-rps')
        return Number.isNaN(v) ? undefined : v
      },
      10_000,
    )
    expect(before).toBeLessThan(20)
    const traffic = load(8, 20_000)
    try {
      await until(
        'the page showing the load',
        async () => ((await num('#lb-rps')) > 50 ? true : undefined),
        15_000,
      )
      const cell = async (id: string) =>
        Number(((await page.textContent(`tr[data-web="${id}"] td:nth-child(3)`)) ?? '').replace(/,/g, ''))
      for (const id of ['web-1', 'web-2', 'web-3']) {
        await until(`requests/s of ${id}`, async () => ((await cell(id)) > 0 ? true : undefined), 10_000)
      }
      expect((await page.textContent('#cache-ratio')) ?? '').toMatch(/%$/)
      expect(await page.locator('#chart-rps canvas').count()).toBe(1)
      await page.screenshot({ path: path.join(artifacts, 'dashboard-load.png'), fullPage: true })
    } finally {
      figures.requestsDuringLoad = await traffic.stop()
    }
  })

  it('turns a killed web server red, then green again when the supervisor has it back', async () => {
    const traffic = load(4, 40_000)
    try {
      const victim = (await status()).rows.find((r) => r.name === 'web-2')
      expect(victim?.pid).toBeGreaterThan(0)
      const t0 = Date.now()
      process.kill(victim?.pid as number, 'SIGKILL')
      await page.waitForSelector('tr[data-web="web-2"][data-health="down"]', { timeout: 10_000 })
      figures.redAfterMs = Date.now() - t0
      await page.waitForSelector('#banners .error', { timeout: 5_000 })
      expect(await page.textContent('#banners')).toMatch(/web-2 is down/)
      await page.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true })
      await page.waitForSelector('tr[data-web="web-2"][data-health="up"]', { timeout: 30_000 })
      figures.greenAgainAfterMs = Date.now() - t0
      await page.waitForSelector('tr[data-process="web-2"][data-health="up"]', { timeout: 5_000 })
      const restarts = await page.textContent('tr[data-process="web-2"] td:nth-child(7)')
      expect(restarts).toBe('1')
    } finally {
      await traffic.stop()
    }
  })

  it('keeps going with a clear banner while the store Redis hangs, and drops it once it is back', async () => {
    // The page's CSP allows no eval, so waits go through locators, not page functions.
    const storeBanner = () => page.locator('#banners div', { hasText: 'store Redis does not answer' })
    const store = (await status()).rows.find((r) => r.name === 'redis-store')
    expect(store?.pid).toBeGreaterThan(0)
    stopped = store?.pid
    process.kill(store?.pid as number, 'SIGSTOP')
    try {
      await storeBanner().waitFor({ timeout: 10_000 })
      // Still live: the figures go on updating from the other sources.
      const at = await page.textContent('#updated')
      await until(
        'another snapshot',
        async () => ((await page.textContent('#updated')) !== at ? true : undefined),
        5_000,
      )
      expect(await page.getAttribute('#conn', 'class')).toContain('live')
      expect(await page.textContent('tr[data-kv="store"]')).toMatch(/away/)
      await page.screenshot({ path: path.join(artifacts, 'dashboard-store-away.png'), fullPage: true })
    } finally {
      process.kill(store?.pid as number, 'SIGCONT')
      stopped = undefined
    }
    await storeBanner().waitFor({ state: 'detached', timeout: 15_000 })
  })

  it('retries a failed job from its Retry button, and the LB logs who did it', async () => {
    await page.fill('#operator', 'ci-operator')
    await page.dispatchEvent('#operator', 'change')
    const row = page.locator('tr[data-failure="dashboard.probe-1"]')
    await row.waitFor({ timeout: 20_000 })
    expect(await row.textContent()).toContain('FLEET_E_PROBE_BROKEN')
    await row.getByRole('button', { name: 'Retry' }).click()
    await until(
      'the retried job to complete',
      async () => ((await queue?.getJobState('dashboard.probe-1')) === 'completed' ? true : undefined),
      10_000,
    )
    expect(retried).toBe(2)
    expect(await page.textContent('#action-result')).toMatch(/retried dashboard\.probe-1/)
    await page.waitForSelector('tr[data-failure="dashboard.probe-1"]', { state: 'detached', timeout: 5_000 })
    // The LB's log file is written through a buffer flushed at least every second (src/log.ts).
    const audit = await until(
      "the audit line in the LB's log",
      async () => {
        const log = await fs.readFile(path.join(env.FLEET_DATA_DIR, 'logs', 'lb-1.log'), 'utf8')
        const lines = log.split('\n').filter((l) => l.includes('"audit":true') && l.includes('job.retry'))
        return lines.length > 0 ? lines.map((l) => JSON.parse(l) as Record<string, unknown>) : undefined
      },
      5_000,
    )
    expect(audit).toContainEqual(
      expect.objectContaining({
        action: 'job.retry',
        outcome: 'retried',
        job: { type: 'dashboard.probe', id: 'dashboard.probe-1' },
        who: expect.objectContaining({ operator: 'ci-operator', auth: 'loopback' }),
        failedWith: 'FLEET_E_PROBE_BROKEN',
      }),
    )
  })
})
