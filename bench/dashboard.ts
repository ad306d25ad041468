/**
 * What one open dashboard costs the load balancer: the LB benchmark's setup (Fleet's LB from dist/cli/lb-main.js
 * pinned to CPU 0 in front of two nginx backends; wrk, the backends and this driver on CPU 1), with a store
 * Redis for the registry and queues, and backends whose /metrics answer a real web server's metrics text (so
 * each tick parses what it would in a stack). Rounds alternate: wrk with no page open (the sampler idle), then
 * wrk with one dashboard event stream open (a snapshot a second). Prints the medians of requests/s, p50, p99
 * and requests per CPU-second of the LB for both, the throughput loss (target < 3%), the LB's CPU per
 * second with the page open and no traffic, and the page's weight.
 *
 * Run: `npx tsx bench/dashboard.ts` (installs nginx and wrk with apt-get when missing).
 * Env: BENCH_ROUNDS (5), BENCH_SECONDS (8), BENCH_CONNECTIONS (64), BENCH_IDLE_SECONDS (10: each of the two
 * no-traffic CPU windows). BENCH_SMOKE=1: 1 round, 1 s runs, 2 s windows (bench/lib/smoke.ts). Error answers,
 * a page that sends no snapshot, a page file that is not served or an LB that exits make it exit non-zero.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Histogram } from 'prom-client'
import { CacheMetrics } from '../src/cache/metrics.js'
import { createMetricsRegistry } from '../src/process/metrics.js'
import { freePort, waitForPort } from '../src/stack/ports.js'
import { LocalRedis } from '../src/stack/redis.js'
import {
  Bench,
  build,
  cpuSeconds,
  LOAD_CPU,
  log,
  median,
  multiCore,
  type WrkResult,
  wrk,
} from './lib/procs.js'
import { exitOnErrors, fail, knob, smokeNote } from './lib/smoke.js'
import { ensureTools } from './lib/tools.js'

const ROUNDS = knob('BENCH_ROUNDS', 5, 1)
const SECONDS = knob('BENCH_SECONDS', 8, 1)
const CONNECTIONS = knob('BENCH_CONNECTIONS', 64, 64)
const IDLE_SECONDS = knob('BENCH_IDLE_SECONDS', 10, 2)
/** The sampler goes on this long after the last page closed (FLEET_DASHBOARD_HISTORY, its minimum). */
const HISTORY_S = 10
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const bench = new Bench('dashboard')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a')

/** The /metrics text of a busy web server: process metrics, 24 routes x 3 statuses of latency, cache counters. */
async function webMetricsText(): Promise<string> {
  const registry = createMetricsRegistry({ role: 'web', instance: 'web-bench' })
  const h = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request received to response sent, by route template and status.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  for (let r = 0; r < 24; r++)
    for (const status of ['200', '404', '503'])
      for (let i = 0; i < 20; i++)
        h.observe({ method: 'GET', route: `/api/route-${r}/:id`, status_code: status }, i / 1000)
  const cache = new CacheMetrics(registry)
  for (const k of ['query', 'object'] as const) for (let i = 0; i < 100; i++) cache.inc('hits', k)
  return registry.metrics()
}

/**
 * Opens the dashboard's event stream and reads it until `close()`; counts the snapshots. `ready` resolves
 * with the first snapshot and rejects when the stream answers other than 200 or sends none within 15 s.
 */
function openDashboard(adminPort: number): { close: () => void; count: () => number; ready: Promise<void> } {
  let snapshots = 0
  let req: http.ClientRequest | undefined
  let timer: NodeJS.Timeout | undefined
  const ready = new Promise<void>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error('the dashboard sent no snapshot within 15 s')), 15_000)
    req = http.get({ host: '127.0.0.1', port: adminPort, path: '/dashboard/events', agent: false }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`GET /dashboard/events answered ${res.statusCode}`))
      res.on('data', (c: Buffer) => {
        const n = c.toString().split('event: snapshot').length - 1
        snapshots += n
        if (n > 0) resolve()
      })
      res.on('error', () => {})
    })
    req.on('error', reject)
  }).finally(() => clearTimeout(timer))
  return {
    ready,
    count: () => snapshots,
    close() {
      req?.destroy()
    },
  }
}

async function pageWeight(adminPort: number): Promise<{ raw: number; gzip: number }> {
  let raw = 0
  let gzip = 0
  for (const f of [
    '',
    'app.js',
    'charts.js',
    'style.css',
    'vendor/uPlot.iife.min.js',
    'vendor/uPlot.min.css',
  ]) {
    const url = `http://127.0.0.1:${adminPort}/dashboard/${f}`
    const plain = await fetch(url, { headers: { 'accept-encoding': 'identity' } })
    raw += (await plain.arrayBuffer()).byteLength
    const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(url, { headers: { 'accept-encoding': 'gzip' } }, resolve).on('error', reject),
    )
    gzip += Number(res.headers['content-length'])
    res.resume()
    if (plain.status !== 200 || res.statusCode !== 200)
      fail(`/dashboard/${f} answered ${plain.status} (identity), ${res.statusCode} (gzip)`)
  }
  return { raw, gzip }
}

async function main(): Promise<void> {
  smokeNote('dashboard bench')
  ensureTools(['nginx', 'wrk', 'taskset', 'pgrep'])
  build(root)
  if (!fs.existsSync(path.join(root, 'dist/dashboard/public/index.html')))
    throw new Error('the build did not copy the page')
  if (!multiCore) log('note: one CPU only; the LB and the load share it')
  spawnSync('taskset', ['-pc', LOAD_CPU, String(process.pid)])
  const [b1, b2, pLb, pAdmin, pRedis] = await Promise.all(Array.from({ length: 5 }, () => freePort()))

  // nginx's worker runs as another user: it must read the file (the scratch folder is 0700).
  fs.chmodSync(bench.work, 0o755)
  const metricsFile = path.join(bench.work, 'metrics.txt')
  fs.writeFileSync(metricsFile, await webMetricsText(), { mode: 0o644 })
  const metrics = `location = /metrics { default_type text/plain; alias ${metricsFile}; }`
  bench.nginxBackends([b1, b2], metrics)
  const redis = new LocalRedis({ role: 'store', dataDir: path.join(bench.work, 'redis'), port: pRedis })
  await redis.start()
  try {
    const lb = bench.fleetLb(root, { port: pLb, admin: pAdmin }, [b1, b2], {
      REDIS_URL: redis.url,
      CACHE_REDIS_URL: redis.url,
      FLEET_DASHBOARD_HISTORY: `${HISTORY_S}s`,
      FLEET_DATA_DIR: bench.work,
    })
    await waitForPort(pLb, '127.0.0.1', 60_000)
    await waitForPort(pAdmin, '127.0.0.1', 60_000)
    const pid = lb.pid as number
    log(
      `metrics text per backend: ${fs.statSync(metricsFile).size} bytes; ${ROUNDS} rounds of ${SECONDS}s, ${CONNECTIONS} connections`,
    )
    log('warming up ...')
    wrk(pLb, Math.min(3, SECONDS), CONNECTIONS)

    // The sampler's own cost with no traffic: CPU seconds of the LB over 10 s, page open vs not.
    const idle0 = cpuSeconds(pid)
    await sleep(IDLE_SECONDS * 1000)
    const idleCpu = (cpuSeconds(pid) - idle0) / IDLE_SECONDS
    const page = openDashboard(pAdmin)
    await page.ready
    const open0 = cpuSeconds(pid)
    await sleep(IDLE_SECONDS * 1000)
    const openCpu = (cpuSeconds(pid) - open0) / IDLE_SECONDS
    page.close()
    log(
      `idle LB: ${fmt(idleCpu * 1000, 1)} ms CPU/s without a page, ${fmt(openCpu * 1000, 1)} ms CPU/s with one open`,
    )
    await sleep((HISTORY_S + 2) * 1000)

    const without: WrkResult[] = []
    const withPage: WrkResult[] = []
    for (let r = 0; r < ROUNDS; r++) {
      without.push(wrk(pLb, SECONDS, CONNECTIONS, undefined, pid))
      const open = openDashboard(pAdmin)
      await open.ready
      await sleep(1500)
      const before = open.count()
      withPage.push(wrk(pLb, SECONDS, CONNECTIONS, undefined, pid))
      // wrk ran synchronously: let this process read what the LB sent meanwhile before counting.
      await sleep(300)
      const n = open.count() - before
      open.close()
      log(
        `round ${r + 1}/${ROUNDS}: without ${fmt(without[r].rps, 0)}/s, with a page ${fmt(withPage[r].rps, 0)}/s (${n} snapshots during its ${SECONDS} s)`,
      )
      // Until the sampler stops (it samples on for the history span after the last page closed).
      if (r < ROUNDS - 1) await sleep((HISTORY_S + 2) * 1000)
    }
    const med = (rs: WrkResult[], k: keyof WrkResult) => median(rs.map((x) => x[k]))
    const weight = await pageWeight(pAdmin)
    log('')
    log('| LB | req/s | p50 ms | p99 ms | req per CPU-s |')
    log('| --- | ---: | ---: | ---: | ---: |')
    for (const [name, rs] of [
      ['no dashboard open', without],
      ['one dashboard open (1 snapshot/s)', withPage],
    ] as const)
      log(
        `| ${name} | ${fmt(med(rs, 'rps'), 0)} | ${fmt(med(rs, 'p50'))} | ${fmt(med(rs, 'p99'))} | ${fmt(med(rs, 'perCpu'), 0)} |`,
      )
    const loss = 1 - med(withPage, 'rps') / med(without, 'rps')
    const cpuLoss = 1 - med(withPage, 'perCpu') / med(without, 'perCpu')
    // Each round's pair ran back to back: the median of the per-round losses is the steadiest figure.
    const pairLoss = median(without.map((w, i) => 1 - withPage[i].rps / w.rps))
    log('')
    log(`page weight: ${weight.raw} bytes (${weight.gzip} gzipped) of HTML, JS and CSS, uPlot included`)
    log(`dashboard cost with no traffic: ${fmt((openCpu - idleCpu) * 1000, 1)} ms of LB CPU per second`)
    log(`requests per LB CPU-second with a page open: ${fmt(cpuLoss * 100, 1)}% fewer`)
    log(
      `${pairLoss < 0.03 ? 'MET    ' : 'NOT MET'} throughput loss with one dashboard open < 3%: ${fmt(pairLoss * 100, 1)}% (median of rounds; of medians: ${fmt(loss * 100, 1)}%)`,
    )
  } finally {
    await redis.stop()
  }
}

try {
  await main()
} finally {
  bench.stopAll()
  await sleep(300)
  fs.rmSync(bench.work, { recursive: true, force: true })
}
exitOnErrors('bench/dashboard.ts')
