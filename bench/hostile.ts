/**
 * GETs while 800 clients trickle request bodies (issue #12): Fleet's load balancer against HAProxy (1 thread,
 * `option http-buffer-request` and `timeout http-request`, its own answer to slow bodies), in front of the
 * same two nginx backends. Each proxy is pinned to CPU 0; wrk, the backends, the slow clients and this
 * driver to CPU 1. Per proxy: GET p50/p99 and requests/s at a moderate load (wrk, 16 connections), first
 * with nothing else, then while 800 connections each send `POST /api/users` with `Content-Length: 1000000`
 * and one byte every 5 s (medians of the rounds); the ratio of the two p99s (target for Fleet: <= 2x), the
 * GET errors, and whether the proxy still runs afterwards.
 *
 * Run: `npx tsx bench/hostile.ts` (installs haproxy, nginx and wrk with apt-get when missing).
 * Env: BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_SLOW (800). BENCH_SMOKE=1: 1 round, 1 s runs, 100 slow
 * clients (bench/lib/smoke.ts). A GET error answer or a proxy that stops makes it exit non-zero.
 */
import { spawnSync } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, waitForPort } from '../src/stack/ports.js'
import { Bench, build, LOAD_CPU, log, median, type WrkResult, wrk } from './lib/procs.js'
import { exitOnErrors, fail, knob, SMOKE, smokeNote } from './lib/smoke.js'
import { ensureTools } from './lib/tools.js'

const ROUNDS = knob('BENCH_ROUNDS', 3, 1)
const SECONDS = knob('BENCH_SECONDS', 5, 1)
const SLOW = knob('BENCH_SLOW', 800, 100)
const CONNECTIONS = 16
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const bench = new Bench('hostile')

/** `n` connections that announce a 1 MB body and send one byte every 5 s; `answered` counts closed ones. */
function slowClients(
  port: number,
  n: number,
): { close: () => void; answered: () => number; statuses: Map<string, number> } {
  const sockets: net.Socket[] = []
  const statuses = new Map<string, number>()
  let answered = 0
  for (let i = 0; i < n; i++) {
    const s = net.connect({ port, host: '127.0.0.1' })
    s.on('error', () => {})
    let first = true
    s.on('data', (d: Buffer) => {
      if (!first) return
      first = false
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(d.toString('latin1'))?.[1] ?? '?'
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
    })
    s.on('close', () => answered++)
    s.write(
      'POST /api/users HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{',
    )
    sockets.push(s)
  }
  const drip = setInterval(() => {
    for (const s of sockets) if (s.writable) s.write('"')
  }, 5_000)
  return {
    close() {
      clearInterval(drip)
      for (const s of sockets) s.destroy()
    },
    answered: () => answered,
    statuses,
  }
}

async function main(): Promise<void> {
  smokeNote('hostile bench')
  ensureTools(['haproxy', 'nginx', 'wrk', 'taskset', 'pgrep'])
  build(root)
  spawnSync('taskset', ['-pc', LOAD_CPU, String(process.pid)])
  const [b1, b2, pHa, pFleet, pAdmin] = await Promise.all(Array.from({ length: 5 }, () => freePort()))
  bench.nginxBackends([b1, b2])
  const procs = {
    haproxy: bench.haproxy(pHa, [b1, b2], ['timeout http-request 30s', 'option http-buffer-request']),
    fleet: bench.fleetLb(root, { port: pFleet, admin: pAdmin }, [b1, b2]),
  }
  const ports = { haproxy: pHa, fleet: pFleet }
  for (const port of [b1, b2, pHa, pFleet]) await waitForPort(port, '127.0.0.1', 60_000)
  log(
    `${SLOW} slow-body clients (1 byte / 5 s of a 1 MB body); GETs by wrk -c${CONNECTIONS}, ${ROUNDS} rounds of ${SECONDS} s`,
  )

  const rows: string[] = []
  const ratios: Record<string, number> = {}
  for (const name of ['haproxy', 'fleet'] as const) {
    const port = ports[name]
    wrk(port, 1, CONNECTIONS) // warm-up
    const idle: WrkResult[] = []
    for (let r = 0; r < ROUNDS; r++) idle.push(wrk(port, SECONDS, CONNECTIONS))
    const slow = slowClients(port, SLOW)
    await new Promise((r) => setTimeout(r, SMOKE ? 500 : 2_000))
    const busy: WrkResult[] = []
    for (let r = 0; r < ROUNDS; r++) busy.push(wrk(port, SECONDS, CONNECTIONS))
    const answeredDuring = slow.answered()
    slow.close()
    const alive = procs[name].exitCode === null
    if (!alive) fail(`${name} stopped running during the slow bodies`)
    const m = (rs: WrkResult[], k: keyof WrkResult) => median(rs.map((x) => x[k]))
    ratios[name] = m(busy, 'p99') / m(idle, 'p99')
    log(
      `${name}: idle p99 ${m(idle, 'p99').toFixed(2)} ms, with slow bodies ${m(busy, 'p99').toFixed(2)} ms; slow clients answered meanwhile: ${answeredDuring} (${[...slow.statuses].map(([s, n]) => `${s} x${n}`).join(', ') || 'none'}); running after: ${alive}`,
    )
    rows.push(
      `| ${name} | ${m(idle, 'rps').toFixed(0)} | ${m(idle, 'p50').toFixed(2)} | ${m(idle, 'p99').toFixed(2)} | ${m(busy, 'rps').toFixed(0)} | ${m(busy, 'p50').toFixed(2)} | ${m(busy, 'p99').toFixed(2)} | ${ratios[name].toFixed(2)}x | ${alive ? 'yes' : 'NO'} |`,
    )
  }
  log('')
  log(
    `| proxy | idle req/s | idle p50 ms | idle p99 ms | req/s, ${SLOW} slow bodies | p50 ms | p99 ms | p99 slow / idle | running after |`,
  )
  log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
  for (const r of rows) log(r)
  log('')
  const fleet = ratios.fleet ?? Number.NaN
  log(
    `${fleet <= 2 ? 'MET    ' : 'NOT MET'} GET p99 during ${SLOW} slow-body clients <= 2x idle: ${fleet.toFixed(2)}x (HAProxy ${ratios.haproxy?.toFixed(2)}x)`,
  )
}

try {
  await main()
} finally {
  bench.finish()
}
exitOnErrors('bench/hostile.ts')
