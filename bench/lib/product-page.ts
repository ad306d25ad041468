/**
 * Part (c) of bench/cache.ts: the shop's real `GET /api/products/:id` through real processes, as Fleet runs
 * them: `fleet lb` -> `fleet web`, cached (FLEET_CACHE=true) against uncached (FLEET_CACHE=false: X-Cache
 * BYPASS, the page assembled from PostgreSQL), measured with wrk over random ids, rounds alternating.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { freePort, waitForPort } from '../../src/stack/ports.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const log = (line: string) => process.stdout.write(`${line}\n`)

export interface PageBenchOptions {
  /** Environment of every child: DATABASE_URL, REDIS_URL, CACHE_REDIS_URL, FLEET_DB_SCHEMA (seeded)... */
  env: Record<string, string>
  /** The children started here are added to this list; the caller stops them (stopChildren). */
  children: ChildProcess[]
  rounds: number
  /** Seconds per wrk run. */
  seconds: number
  /** wrk connections. */
  connections: number
  /** Requests go to random ids 1..range (all seeded). */
  range: number
}

/** `fleet <args>` as a child process, as the stack runs it (TypeScript through tsx, like bench/jobs.ts). */
export function startFleet(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
}

/** Stops the children (SIGTERM, then SIGKILL after 15 s) and waits until each has exited. */
export async function stopChildren(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return
      const exited = new Promise((r) => c.once('exit', r))
      c.kill('SIGTERM')
      const timer = setTimeout(() => c.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }),
  )
}

/**
 * Waits until the LB on `port` serves a real page of the shop (`path`, 200): it answers 503 until its health
 * check has seen its web server ready. Not `/readyz`: the public port never forwards it (FLEET_LB_INTERNAL_PATHS,
 * 404); the LB's own state is on its admin port (`/status`). Throws after `seconds`, naming the last answer.
 */
export async function untilServed(port: number, path = '/api/categories', seconds = 60): Promise<void> {
  const deadline = Date.now() + seconds * 1000
  let last = 'no answer'
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`).catch((err: Error) => err)
    if (!(res instanceof Error)) {
      const body = await res.text()
      if (res.status === 200) return
      last = `${res.status} ${body.slice(0, 300)}`
    } else last = res.message
    if (Date.now() > deadline)
      throw new Error(`the LB on port ${port} does not serve ${path} after ${seconds} s (last: ${last})`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

interface WrkRun {
  rps: number
  /** Latency percentiles in ms, from wrk's `--latency` distribution. */
  p50: number
  p99: number
}

function parseMs(v: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(v)
  if (!m) return Number.NaN
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1)
}

/** One wrk run of `seconds` on the LB at `port`, the requests made by `script`; throws on any error answer. */
function wrk(port: number, seconds: number, connections: number, script: string): Promise<WrkRun> {
  const args = [
    '-t1',
    `-c${connections}`,
    `-d${seconds}s`,
    '--latency',
    '-s',
    script,
    `http://127.0.0.1:${port}/`,
  ]
  return new Promise((resolve, reject) =>
    execFile('wrk', args, { encoding: 'utf8' }, (err, out) => {
      if (err) return reject(err)
      const errors = /Non-2xx or 3xx responses: \d+|Socket errors: .*/.exec(out)
      if (errors) return reject(new Error(`wrk on port ${port}: ${errors[0]}`))
      resolve({
        rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
        p50: parseMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ''),
        p99: parseMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ''),
      })
    }),
  )
}

/** The web server's cache read counters (fleet_cache_*_total summed over their labels), from its /metrics. */
async function cacheReads(webPort: number): Promise<Record<'hits' | 'misses' | 'stale' | 'bypass', number>> {
  const text = await (await fetch(`http://127.0.0.1:${webPort}/metrics`)).text()
  const out = { hits: 0, misses: 0, stale: 0, bypass: 0 }
  for (const line of text.split('\n')) {
    const m = /^fleet_cache_(hits|misses|stale|bypass)_total(?:\{[^}]*\})? (\S+)$/.exec(line)
    if (m) out[m[1] as keyof typeof out] += Number(m[2])
  }
  return out
}

/** GET through the LB: status, X-Cache and the parsed body. */
async function page(lbPort: number, id: number): Promise<{ status: number; xCache: string; body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${lbPort}/api/products/${id}`)
  const text = await res.text()
  return { status: res.status, xCache: res.headers.get('x-cache') ?? '(none)', body: JSON.parse(text) }
}

/**
 * (c) The product page through `fleet lb` -> `fleet web`, cached against uncached. Two independent pairs of
 * processes on the same PostgreSQL schema and Redis; only FLEET_CACHE differs. The LB and the web server are
 * separate Node processes, as in production; wrk is not pinned (on 2 cores, pinning it would force it onto
 * one busy core with a server process; the scheduler balances both configurations alike).
 */
export async function productPageThroughLb(o: PageBenchOptions): Promise<void> {
  const { env, children, range } = o
  const [webC, webU, lbC, lbU] = await Promise.all(Array.from({ length: 4 }, () => freePort()))
  children.push(startFleet(['web'], { ...env, FLEET_WEB_PORT: String(webC), FLEET_CACHE: 'true' }))
  children.push(startFleet(['web'], { ...env, FLEET_WEB_PORT: String(webU), FLEET_CACHE: 'false' }))
  for (const [lb, web] of [
    [lbC, webC],
    [lbU, webU],
  ])
    children.push(
      startFleet(['lb', '--upstream', `http://127.0.0.1:${web}`], {
        ...env,
        FLEET_PORT: String(lb),
        FLEET_LB_ADMIN_PORT: '0',
      }),
    )
  for (const port of [webC, webU, lbC, lbU]) await waitForPort(port, '127.0.0.1', 120_000)
  for (const lb of [lbC, lbU]) await untilServed(lb)

  // Warm the cached side: every id of the range once (misses fill the cache), 16 at a time.
  let next = 1
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next <= range) {
        const p = await page(lbC, next++)
        if (p.status !== 200) throw new Error(`warming: /api/products/${next - 1} answered ${p.status}`)
      }
    }),
  )
  const cached = await page(lbC, 1)
  const uncached = await page(lbU, 1)
  const last = await page(lbC, range)
  if (cached.xCache !== 'HIT' || last.xCache !== 'HIT' || uncached.xCache !== 'BYPASS')
    throw new Error(
      `X-Cache: cached side ${cached.xCache} (id ${range}: ${last.xCache}), uncached side ${uncached.xCache}; want HIT and BYPASS`,
    )
  if (!isDeepStrictEqual(cached.body, uncached.body))
    throw new Error('the cached and the uncached /api/products/1 answer different JSON')

  const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-bench-cache-')), 'ids.lua')
  fs.writeFileSync(
    script,
    `-- Random product ids 1..${range}; the same seed for every run, so both configurations see one sequence.
math.randomseed(42)
request = function()
  return wrk.format(nil, "/api/products/" .. math.random(1, ${range}))
end
`,
  )
  try {
    // JIT, connection pools and PostgreSQL's buffers warm on both sides before anything counts.
    for (const lb of [lbU, lbC]) await wrk(lb, Math.min(2, o.seconds), o.connections, script)
    const before = await cacheReads(webC)
    const runs: Record<'cached' | 'uncached', WrkRun[]> = { cached: [], uncached: [] }
    for (let r = 0; r < o.rounds; r++) {
      // Alternate which goes first, so a drift in background load does not favour one side.
      const order = r % 2 === 0 ? (['uncached', 'cached'] as const) : (['cached', 'uncached'] as const)
      for (const side of order)
        runs[side].push(await wrk(side === 'cached' ? lbC : lbU, o.seconds, o.connections, script))
    }
    const after = await cacheReads(webC)
    const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
    const line = (name: string, xs: WrkRun[]) => {
      const rps = med(xs.map((x) => x.rps)).toFixed(0)
      const p50 = med(xs.map((x) => x.p50)).toFixed(2)
      const p99 = med(xs.map((x) => x.p99)).toFixed(2)
      const rounds = xs.map((x) => x.rps.toFixed(0)).join(', ')
      return `    ${name.padEnd(18)} ${rps.padStart(7)} req/s   p50 ${p50} ms   p99 ${p99} ms   (rounds: ${rounds} req/s)`
    }
    const ratio = med(runs.cached.map((x) => x.rps)) / med(runs.uncached.map((x) => x.rps))
    const bytes = Buffer.byteLength(JSON.stringify(cached.body))
    log(
      `    checks: X-Cache HIT (cached) and BYPASS (uncached); /api/products/1 the same JSON either way (${bytes} bytes)`,
    )
    log(line('uncached (anchor)', runs.uncached))
    log(line('cached', runs.cached))
    log(`    cached / uncached  ${ratio.toFixed(2)}x req/s   target >= 5x  ${ratio >= 5 ? 'OK' : 'MISSED'}`)
    log(
      `    cache reads on the cached web server during the rounds: ${after.hits - before.hits} hits, ` +
        `${after.misses - before.misses} misses, ${after.stale - before.stale} stale, ${after.bypass - before.bypass} bypass ` +
        '(a hit is one read of the cached page response; a miss adds the reads of ProductPage and RelatedProducts)',
    )
  } finally {
    fs.rmSync(path.dirname(script), { recursive: true, force: true })
  }
}
