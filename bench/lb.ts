/**
 * Fleet's load balancer against HAProxy (1 thread), nginx (1 worker) and @fastify/http-proxy, in front of
 * the same two backends (one nginx process serving two ports, a small fixed answer). Every proxy is pinned
 * to CPU 0; wrk, the backends and this driver to CPU 1. Prints, per proxy, the medians over several rounds
 * of requests/s, p50 and p99 at full load and the ratio to HAProxy; the latency a proxy adds over hitting a
 * backend directly (one connection); p99 at half of HAProxy's peak rate; RSS with 1,000 idle keep-alive
 * client connections; RSS growth during a 1 GB streamed upload.
 *
 * Run: `npx tsx bench/lb.ts` (installs haproxy, nginx and wrk with apt-get when missing).
 * Env: BENCH_ROUNDS (3), BENCH_SECONDS (8), BENCH_CONNECTIONS (64), BENCH_IDLE (1000 idle connections),
 * BENCH_UPLOAD_MB (1024). BENCH_SMOKE=1: 1 round, 1 s runs, 100 idle connections, a 64 MB upload
 * (bench/lib/smoke.ts). Error answers, a failed upload or a proxy that exits make it exit non-zero.
 */
import { type ChildProcess, execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { freePort, waitForPort } from '../src/stack/ports.js'
import {
  Bench,
  build,
  LOAD_CPU,
  lbEntry,
  log,
  median,
  multiCore,
  PROXY_CPU,
  rssOf,
  type WrkResult,
  wrk,
} from './lib/procs.js'
import { exitOnErrors, fail, knob, SMOKE, smokeNote } from './lib/smoke.js'
import { ensureTools } from './lib/tools.js'

const ROUNDS = knob('BENCH_ROUNDS', 3, 1)
const SECONDS = knob('BENCH_SECONDS', 8, 1)
const CONNECTIONS = knob('BENCH_CONNECTIONS', 64, 64)
const IDLE = knob('BENCH_IDLE', 1000, 100)
const UPLOAD_MB = knob('BENCH_UPLOAD_MB', 1024, 64)
/** Seconds of each one-connection run (the latency a proxy adds). */
const SINGLE_SECONDS = SMOKE ? SECONDS : Math.max(3, SECONDS / 2)
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const bench = new Bench('lb')
const work = bench.work
const pinned = bench.pinned.bind(bench)
const nginxConf = bench.nginxConf.bind(bench)
/** Opens `n` keep-alive connections, one request each, and keeps them idle. */
async function idleConnections(port: number, n: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = []
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(
      Array.from(
        { length: Math.min(100, n - i) },
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect({ port, host: '127.0.0.1' })
            s.once('error', reject)
            s.once('data', () => resolve(s))
            s.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n')
          }),
      ),
    )
    sockets.push(...batch)
  }
  return sockets
}

/** Streams UPLOAD_MB of generated data as one upload; returns the peak RSS growth of `pid` meanwhile. */
async function uploadGrowth(port: number, pid: number): Promise<number> {
  const GB = UPLOAD_MB * 1024 ** 2
  const chunk = Buffer.alloc(256 * 1024, 'u')
  const before = rssOf(pid)
  let peak = before
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(pid))
  }, 100)
  try {
    await new Promise<void>((resolve, reject) => {
      let left = GB
      const body = new Readable({
        read() {
          if (left <= 0) return void this.push(null)
          const n = Math.min(left, chunk.length)
          left -= n
          this.push(n === chunk.length ? chunk : chunk.subarray(0, n))
        },
      })
      const req = http.request(
        {
          port,
          host: '127.0.0.1',
          method: 'POST',
          path: '/upload',
          headers: { 'content-length': String(GB) },
        },
        (res) => {
          let text = ''
          res.on('data', (c: Buffer) => {
            text += c.toString()
          })
          res.on('end', () =>
            res.statusCode === 200 && text === String(GB)
              ? resolve()
              : reject(new Error(`status ${res.statusCode}: ${text.slice(0, 200)}`)),
          )
        },
      )
      req.on('error', reject)
      body.pipe(req)
    })
  } finally {
    clearInterval(timer)
  }
  return peak - before
}

const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a')
const mb = (b: number) => `${(b / 1024 ** 2).toFixed(1)} MB`
const uploadLabel = UPLOAD_MB === 1024 ? '1 GB' : `${UPLOAD_MB} MB`
const idleLabel = IDLE.toLocaleString('en')

async function main(): Promise<void> {
  smokeNote('lb bench')
  ensureTools(['haproxy', 'nginx', 'wrk', 'taskset', 'pgrep'])
  // Compiled JavaScript, through the light entry (the same command as `fleet lb`, without the other commands).
  build(root)
  const fleetEntry = lbEntry(root)
  if (!fs.existsSync(fleetEntry)) throw new Error('the build did not produce dist/cli/lb-main.js')
  if (!multiCore)
    log('note: one CPU only; proxies and load share it, figures are not comparable to the targets')
  // This driver (idle connections, uploads) runs beside wrk and the backends.
  spawnSync('taskset', ['-pc', LOAD_CPU, String(process.pid)])
  const [b1, b2, pHa, pNg, pFleet, pAdmin, pFastify, pSink, pFleetHa, pAdminHa] = await Promise.all(
    Array.from({ length: 10 }, () => freePort()),
  )
  // Uploads end at a sink that reads the whole body before it answers (nginx's `return` answers at once),
  // behind the backends' /upload, so every proxy really carries the full gigabyte.
  const sink = http.createServer((req, res) => {
    let n = 0
    req.on('data', (c: Buffer) => {
      n += c.length
    })
    req.on('end', () => res.end(String(n)))
  })
  await new Promise<void>((r) => sink.listen(pSink, '127.0.0.1', r))
  sink.unref()
  const upload = `location = /upload { proxy_pass http://127.0.0.1:${pSink}; proxy_http_version 1.1; proxy_request_buffering off; proxy_set_header Connection ""; }`
  bench.nginxBackends([b1, b2], upload)

  const ngDir = nginxConf(
    `  upstream be { server 127.0.0.1:${b1}; server 127.0.0.1:${b2}; keepalive 256; }
  server {
    listen 127.0.0.1:${pNg};
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
    }
  }`,
    'nginx-proxy',
  )
  const procs: Record<string, ChildProcess> = {
    haproxy: bench.haproxy(pHa, [b1, b2]),
    nginx: pinned(PROXY_CPU, 'nginx', ['-p', ngDir, '-c', path.join(ngDir, 'nginx.conf')]),
    fleet: bench.fleetLb(root, { port: pFleet, admin: pAdmin }, [b1, b2], { FLEET_LB_MAX_BODY_SIZE: '2gb' }),
    // Fleet's HAProxy engine: the Node control plane and its HAProxy child (CPU and RSS summed over both).
    'fleet-haproxy': bench.fleetLb(root, { port: pFleetHa, admin: pAdminHa }, [b1, b2], {
      FLEET_LB_MAX_BODY_SIZE: '2gb',
      FLEET_LB_ENGINE: 'haproxy',
    }),
    fastify: pinned(
      PROXY_CPU,
      process.execPath,
      [
        '--import',
        'tsx',
        'bench/lib/fastify-proxy.ts',
        String(pFastify),
        `http://127.0.0.1:${b1}`,
        `http://127.0.0.1:${b2}`,
      ],
      { cwd: root, env: { NODE_ENV: 'production' } },
    ),
  }
  const ports: Record<string, number> = {
    direct: b1,
    haproxy: pHa,
    nginx: pNg,
    fleet: pFleet,
    'fleet-haproxy': pFleetHa,
    fastify: pFastify,
  }
  for (const port of Object.values(ports)) await waitForPort(port, '127.0.0.1', 60_000)
  const versions = {
    haproxy: execFileSync('haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0],
    nginx: spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim(),
    wrk: spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0],
    node: process.version,
  }
  log(`${versions.haproxy} | ${versions.nginx} | ${versions.wrk} | node ${versions.node}`)
  log(
    `proxies pinned to CPU ${PROXY_CPU}; wrk, backends and driver to CPU ${LOAD_CPU}; ${ROUNDS} rounds of ${SECONDS}s, ${CONNECTIONS} connections`,
  )
  const names = Object.keys(ports)

  // Memory first, on fresh processes: RSS with 1,000 idle keep-alive connections, then growth during a 1 GB upload.
  // (Smoke mode: fewer connections, a smaller upload.)
  const rss: Record<string, { idle: number; upload: number }> = {}
  for (const name of ['haproxy', 'nginx', 'fleet', 'fleet-haproxy', 'fastify']) {
    const pid = procs[name].pid as number
    const sockets = await idleConnections(ports[name], IDLE)
    await new Promise((r) => setTimeout(r, SMOKE ? 200 : 1000))
    const idle = rssOf(pid)
    for (const s of sockets) s.destroy()
    await new Promise((r) => setTimeout(r, SMOKE ? 100 : 500))
    let upload = Number.NaN
    try {
      upload = await uploadGrowth(ports[name], pid)
    } catch (err) {
      fail(`${name}: upload failed: ${(err as Error).message}`)
    }
    rss[name] = { idle, upload }
  }

  log(
    `RSS measured: ${Object.entries(rss)
      .map(([n, r]) => `${n} ${mb(r.idle)} / +${mb(r.upload)}`)
      .join(', ')}`,
  )
  log('warming up ...')
  for (const name of names) wrk(ports[name], Math.min(2, SECONDS), CONNECTIONS)

  const full: Record<string, WrkResult[]> = Object.fromEntries(names.map((n) => [n, []]))
  const single: Record<string, WrkResult[]> = Object.fromEntries(names.map((n) => [n, []]))
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of names)
      full[name].push(wrk(ports[name], SECONDS, CONNECTIONS, undefined, procs[name]?.pid))
    for (const name of names) single[name].push(wrk(ports[name], SINGLE_SECONDS, 1))
    log(`round ${r + 1}/${ROUNDS}: ${names.map((n) => `${n} ${fmt(full[n][r].rps, 0)}/s`).join(', ')}`)
  }
  const med = (rs: WrkResult[], k: keyof WrkResult) => median(rs.map((x) => x[k]))
  const haRps = med(full.haproxy, 'rps')

  // p99 at half of HAProxy's peak: wrk with a per-request delay (closed loop, approximately that rate).
  const target = haRps / 2
  const conns = Math.max(8, Math.ceil((target * 5) / 1000))
  const delayMs = Math.max(1, Math.round((conns * 1000) / target))
  const script = path.join(work, 'rate.lua')
  fs.writeFileSync(script, `function delay()\n  return ${delayMs}\nend\n`)
  const half: Record<string, WrkResult[]> = Object.fromEntries(names.map((n) => [n, []]))
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of names.filter((n) => n !== 'direct'))
      half[name].push(wrk(ports[name], SECONDS, conns, script))
  }

  log('')
  log(
    `| proxy | req/s | p50 ms | p99 ms | vs HAProxy | req per CPU-s (vs HAProxy) | added p50 ms (1 conn) | p99 ms at half HAProxy rate | RSS, ${idleLabel} idle conns | RSS growth, ${uploadLabel} upload |`,
  )
  log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  const haCpu = med(full.haproxy, 'perCpu')
  const direct50 = med(single.direct, 'p50')
  for (const name of names) {
    const isProxy = name !== 'direct'
    log(
      `| ${name === 'direct' ? 'backend direct' : name} | ${fmt(med(full[name], 'rps'), 0)} | ${fmt(med(full[name], 'p50'))} | ${fmt(
        med(full[name], 'p99'),
      )} | ${fmt(med(full[name], 'rps') / haRps)}x | ${
        isProxy ? `${fmt(med(full[name], 'perCpu'), 0)} (${fmt(med(full[name], 'perCpu') / haCpu)}x)` : ''
      } | ${isProxy ? fmt(med(single[name], 'p50') - direct50, 3) : `(${fmt(direct50, 3)})`} | ${
        isProxy ? fmt(med(half[name], 'p99')) : ''
      } | ${isProxy ? mb(rss[name].idle) : ''} | ${isProxy ? mb(rss[name].upload) : ''} |`,
    )
  }
  const halfRate = median(half.fleet.map((x) => x.rps))
  log(
    `(half-rate runs: ${conns} connections with a ${delayMs} ms pause each, about ${fmt(halfRate, 0)} req/s for fleet)`,
  )
  log('')
  const fleetRps = med(full.fleet, 'rps')
  const peer = med(full.fastify, 'rps')
  const engineRps = med(full['fleet-haproxy'], 'rps')
  const checks: [string, boolean, string][] = [
    [
      'HAProxy engine: throughput >= 0.95x plain HAProxy',
      engineRps >= 0.95 * haRps,
      `${fmt(engineRps / haRps)}x`,
    ],
    [
      'HAProxy engine: p99 at full load <= 1.2x plain HAProxy',
      med(full['fleet-haproxy'], 'p99') <= 1.2 * med(full.haproxy, 'p99'),
      `${fmt(med(full['fleet-haproxy'], 'p99'))} ms vs ${fmt(med(full.haproxy, 'p99'))} ms`,
    ],
    [
      'Node engine: throughput >= 0.3x HAProxy (issue 19)',
      fleetRps >= 0.3 * haRps,
      `${fmt(fleetRps / haRps)}x`,
    ],
    ['throughput >= 0.7x HAProxy', fleetRps >= 0.7 * haRps, `${fmt(fleetRps / haRps)}x`],
    [
      'requests per CPU-second >= 0.7x HAProxy (the same, without other load on the CPU)',
      med(full.fleet, 'perCpu') >= 0.7 * haCpu,
      `${fmt(med(full.fleet, 'perCpu') / haCpu)}x`,
    ],
    ['throughput >= 1.5x the fastest Node peer', fleetRps >= 1.5 * peer, `${fmt(fleetRps / peer)}x`],
    [
      'p99 at half HAProxy peak <= 2x HAProxy p99',
      med(half.fleet, 'p99') <= 2 * med(half.haproxy, 'p99'),
      `${fmt(med(half.fleet, 'p99'))} ms vs ${fmt(med(half.haproxy, 'p99'))} ms`,
    ],
    [
      `RSS with ${idleLabel} idle connections <= 100 MB`,
      rss.fleet.idle <= 100 * 1024 ** 2,
      mb(rss.fleet.idle),
    ],
    [
      `RSS growth during ${uploadLabel} upload <= 50 MB`,
      rss.fleet.upload <= 50 * 1024 ** 2,
      mb(rss.fleet.upload),
    ],
  ]
  for (const [what, ok, figure] of checks) log(`${ok ? 'MET    ' : 'NOT MET'} ${what}: ${figure}`)
}

try {
  await main()
} finally {
  bench.stopAll()
  await new Promise((r) => setTimeout(r, 300))
  fs.rmSync(work, { recursive: true, force: true })
}
exitOnErrors('bench/lb.ts')
