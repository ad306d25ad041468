/**
 * TLS at the edge: HAProxy (1 thread, `bind ... ssl crt <pem> alpn h2,http/1.1`), nginx (1 worker, `ssl http2`),
 * Fleet's LB on the Node engine (`--tls-cert --tls-key`) and Fleet's LB on the HAProxy engine
 * (`FLEET_LB_ENGINE=haproxy`, the same flags), in front of the same two backends as bench/lb.ts (one nginx
 * process serving two ports, a small fixed answer, plain HTTP/1.1), with one self-signed certificate made
 * with openssl in the scratch folder. Every proxy is pinned to CPU 0; the load tools, the backends and this
 * driver to CPU 1. Medians over BENCH_ROUNDS rounds, proxies interleaved within each round, of:
 *
 * 1. new TLS handshakes/s: HTTP/1.1, one request per connection, full handshakes (h2load `--h1 -n B -c B`,
 *    B clients of one connection and one request each, two such h2load processes at a time, again and again
 *    for BENCH_SECONDS; h2load resumes no session). wrk is not used here because it resumes its TLS session
 *    on every reconnection (nginx's `$ssl_session_reused`: every connection but the first of each of wrk's).
 *    A full handshake costs h2load (OpenSSL 3.0) about as much CPU as the proxy, so on one load core this rate
 *    can be the client's: the proxy's CPU per handshake is then the figure to compare;
 * 1b. resumed TLS sessions/s: wrk with `Connection: close` (a new connection per request, the session resumed);
 * 2. HTTP/2 requests/s on a few long-lived connections with many streams: `h2load -c 16 -m 10 -D <seconds>`,
 *    p50 and p99 from its per-request log;
 * 3. HTTPS HTTP/1.1 keep-alive requests/s: wrk -t1 -c64, p50 and p99.
 *
 * Each table gives the ratio to plain HAProxy and the CPU each proxy's process tree spent per request (user +
 * system time from /proc; for Fleet's HAProxy engine the Node control plane and its HAProxy), and that CPU per
 * wall second ("busy": near 1.0 means the proxy's core was the limit; well below, the client on CPU 1 was).
 *
 * Run: `npx tsx bench/tls.ts` or `npm run bench:tls` (installs haproxy, nginx, wrk and nghttp2-client's h2load
 * with apt-get when missing). Env: BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_CONNECTIONS (64: wrk keep-alive),
 * BENCH_H2_CLIENTS (16), BENCH_H2_STREAMS (10), BENCH_HANDSHAKE_BATCH (64 clients per h2load),
 * BENCH_RESUME_CONNECTIONS (16: wrk with Connection: close), BENCH_TLS_KEY (`ec`: ECDSA P-256, or `rsa`: RSA
 * 2048). BENCH_SMOKE=1: 1 round of 1 s runs, no warm-up (bench/lib/smoke.ts). An error answer, a failed
 * request or connection, a wrong ALPN, or a proxy that exits make it exit non-zero.
 */
import { type ChildProcess, execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, waitForPort } from '../src/stack/ports.js'
import { Bench, build, LOAD_CPU, lbEntry, log, multiCore, PROXY_CPU, tree } from './lib/procs.js'
import { exitOnErrors, fail, knob, SMOKE, smokeNote } from './lib/smoke.js'
import {
  type H2Result,
  h2Streams,
  handshakes,
  makeCertificate,
  medianOf,
  type Negotiated,
  nginxTlsListen,
  probeTls,
  wrkUrl,
} from './lib/tls.js'
import { ensureTools } from './lib/tools.js'

const ROUNDS = knob('BENCH_ROUNDS', 3, 1)
const SECONDS = knob('BENCH_SECONDS', 5, 1)
const CONNECTIONS = knob('BENCH_CONNECTIONS', 64, 64)
const H2_CLIENTS = knob('BENCH_H2_CLIENTS', 16, 16)
const H2_STREAMS = knob('BENCH_H2_STREAMS', 10, 10)
const BATCH = knob('BENCH_HANDSHAKE_BATCH', 64, 32)
const RESUME_CONNECTIONS = knob('BENCH_RESUME_CONNECTIONS', 16, 16)
const KEY = (process.env.BENCH_TLS_KEY?.trim() || 'ec') as 'ec' | 'rsa'
if (KEY !== 'ec' && KEY !== 'rsa') throw new Error(`BENCH_TLS_KEY=${JSON.stringify(KEY)}: want ec or rsa`)
/** h2load processes running handshake batches side by side (one's start-up overlaps the other's batch). */
const HANDSHAKE_WORKERS = 2
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const bench = new Bench('tls')
const work = bench.work

const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a')

interface Measure {
  key: string
  title: string
  unit: string
  latency: boolean
  run(name: string, url: string, pid: number | undefined, seconds: number): Promise<H2Result> | H2Result
}

const measures: Measure[] = [
  {
    key: 'handshakes',
    title: `(1) new TLS handshakes/s: HTTP/1.1, one request per connection, full handshakes (h2load --h1, ${HANDSHAKE_WORKERS} x ${BATCH} clients of one request each, repeated)`,
    unit: 'handshakes/s',
    latency: false,
    run: (name, url, pid, seconds) =>
      handshakes(url, {
        seconds,
        batch: BATCH,
        workers: HANDSHAKE_WORKERS,
        pid,
        what: `${name} handshakes`,
      }),
  },
  {
    key: 'resumed',
    title: `(1b) resumed TLS sessions/s: HTTP/1.1, one request per connection (wrk -c${RESUME_CONNECTIONS} -H 'Connection: close'; wrk resumes its session)`,
    unit: 'conn/s',
    latency: true,
    run: (name, url, pid, seconds) =>
      wrkUrl(url, {
        seconds,
        connections: RESUME_CONNECTIONS,
        headers: ['Connection: close'],
        pid,
        what: `${name} resumed`,
      }),
  },
  {
    key: 'h2',
    title: `(2) HTTP/2 requests/s on ${H2_CLIENTS} connections x ${H2_STREAMS} streams (h2load -c ${H2_CLIENTS} -m ${H2_STREAMS} -D ${Math.max(1, Math.round(SECONDS))})`,
    unit: 'req/s',
    latency: true,
    run: (name, url, pid, seconds) =>
      h2Streams(url, {
        seconds,
        clients: H2_CLIENTS,
        streams: H2_STREAMS,
        pid,
        logDir: work,
        what: `${name} h2`,
      }),
  },
  {
    key: 'h1',
    title: `(3) HTTPS HTTP/1.1 keep-alive requests/s (wrk -t1 -c${CONNECTIONS})`,
    unit: 'req/s',
    latency: true,
    run: (name, url, pid, seconds) =>
      wrkUrl(url, { seconds, connections: CONNECTIONS, pid, what: `${name} https keep-alive` }),
  },
]

/** Resolves once `child` accepts connections on `port`; throws at once if it exits first (or after 60 s). */
async function listening(name: string, child: ChildProcess, port: number): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(
        `${name} exited (${child.exitCode ?? child.signalCode}) before it listened on port ${port}`,
      )
    try {
      return await waitForPort(port, '127.0.0.1', 200)
    } catch {
      if (Date.now() > deadline) throw new Error(`${name}: nothing listens on port ${port} after 60 s`)
    }
  }
}

async function main(): Promise<void> {
  smokeNote('tls bench')
  ensureTools(['haproxy', 'nginx', 'wrk', 'h2load', 'openssl', 'taskset', 'pgrep'])
  build(root)
  const fleetEntry = lbEntry(root)
  if (!fs.existsSync(fleetEntry)) throw new Error('the build did not produce dist/cli/lb-main.js')
  if (!multiCore) log('note: one CPU only; proxies and load share it, the figures say little')
  spawnSync('taskset', ['-pc', LOAD_CPU, String(process.pid)])
  const cert = makeCertificate(work, KEY)
  const [b1, b2, pHa, pNg, pFleet, pAdmin, pFleetHa, pAdminHa] = await Promise.all(
    Array.from({ length: 8 }, () => freePort()),
  )
  bench.nginxBackends([b1, b2])
  const ngDir = bench.nginxConf(
    `  upstream be { server 127.0.0.1:${b1}; server 127.0.0.1:${b2}; keepalive 256; }
  server {
    ${nginxTlsListen(pNg, cert)}
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
    }
  }`,
    'nginx-proxy',
  )
  const fleetLb = (port: number, admin: number, env: NodeJS.ProcessEnv): ChildProcess => {
    const args = [fleetEntry, '--port', String(port), '--admin-port', String(admin)]
    for (const b of [b1, b2]) args.push('--upstream', `http://127.0.0.1:${b}`)
    args.push('--tls-cert', cert.cert, '--tls-key', cert.key, '--log-level', 'warn')
    return bench.pinned(PROXY_CPU, process.execPath, args, {
      cwd: root,
      env: { NODE_ENV: 'production', ...env },
    })
  }
  const procs: Record<string, ChildProcess> = {
    haproxy: bench.haproxy(pHa, [b1, b2], [], { pem: cert.pem }),
    nginx: bench.pinned(PROXY_CPU, 'nginx', ['-p', ngDir, '-c', path.join(ngDir, 'nginx.conf')]),
    fleet: fleetLb(pFleet, pAdmin, { FLEET_LB_ENGINE: 'node' }),
    // The Node control plane and its HAProxy child: CPU summed over the process tree.
    'fleet-haproxy': fleetLb(pFleetHa, pAdminHa, { FLEET_LB_ENGINE: 'haproxy' }),
  }
  const ports: Record<string, number> = { haproxy: pHa, nginx: pNg, fleet: pFleet, 'fleet-haproxy': pFleetHa }
  const names = Object.keys(ports)
  for (const port of [b1, b2]) await waitForPort(port, '127.0.0.1', 60_000)
  for (const name of names) await listening(name, procs[name], ports[name])
  // Fleet's admin port opens after its public one: wait for it too before asking /status.
  for (const admin of [pAdmin, pAdminHa]) await waitForPort(admin, '127.0.0.1', 60_000)
  const engine = async (admin: number) =>
    ((await (await fetch(`http://127.0.0.1:${admin}/status`)).json()) as { engine?: string }).engine
  for (const [admin, want] of [
    [pAdmin, 'node'],
    [pAdminHa, 'haproxy'],
  ] as const) {
    const got = await engine(admin)
    if (got !== want) fail(`Fleet's LB on admin port ${admin}: /status says engine ${got}, not ${want}`)
  }

  const versions = [
    execFileSync('haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0],
    spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim(),
    execFileSync('h2load', ['--version'], { encoding: 'utf8' }).trim(),
    spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0],
    execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim(),
    `node ${process.version} (OpenSSL ${process.versions.openssl})`,
  ]
  log(versions.join(' | '))
  log(
    `proxies pinned to CPU ${PROXY_CPU}; h2load, wrk, backends and driver to CPU ${LOAD_CPU}; ${ROUNDS} round(s) of ${SECONDS}s per run; certificate: ${cert.label}, self-signed`,
  )

  // Each port answers over HTTP/1.1 and HTTP/2 by ALPN, and says whether it resumes sessions (for 1b).
  const ca = fs.readFileSync(cert.cert, 'utf8')
  const resumption: Record<string, boolean> = {}
  for (const name of names)
    resumption[name] = await probeTls(name, ports[name], ca, /^hello from backend [12]\n$/)
  // Every process of each proxy's tree now, to tell at the end whether one exited (HAProxy under Fleet too).
  const startTrees = Object.fromEntries(names.map((n) => [n, tree(procs[n].pid as number)]))
  log(
    `processes per proxy: ${names.map((n) => `${n} ${startTrees[n].length}`).join(', ')}; resumes TLS sessions: ${names.map((n) => `${n} ${resumption[n] ? 'yes' : 'NO'}`).join(', ')}`,
  )

  const url = (name: string) => `https://127.0.0.1:${ports[name]}/`
  if (!SMOKE) {
    log('warming up ...')
    for (const name of names)
      for (const m of measures) await m.run(`${name} (warm-up)`, url(name), undefined, 1)
  }

  const results: Record<string, Record<string, H2Result[]>> = Object.fromEntries(
    measures.map((m) => [m.key, Object.fromEntries(names.map((n) => [n, [] as H2Result[]]))]),
  )
  const negotiated: Record<string, Negotiated | undefined> = {}
  for (let r = 0; r < ROUNDS; r++) {
    for (const m of measures)
      for (const name of names) {
        const res = await m.run(name, url(name), procs[name].pid, SECONDS)
        results[m.key][name].push(res)
        if (res.negotiated) negotiated[name] ??= res.negotiated
      }
    log(
      `round ${r + 1}/${ROUNDS}: ${measures
        .map((m) => `${m.key} ${names.map((n) => fmt(results[m.key][n][r].rps, 0)).join('/')}`)
        .join(', ')} (${names.join('/')})`,
    )
  }
  for (const name of names) {
    const gone = startTrees[name].filter((pid) => !fs.existsSync(`/proc/${pid}`))
    if (gone.length > 0) fail(`${name}: process(es) ${gone.join(', ')} of its tree exited during the run`)
  }

  log('')
  log("negotiated (h2load's first connection):")
  for (const name of names) {
    const n = negotiated[name]
    log(`  ${name}: ${n ? `${n.protocol}, ${n.cipher}, key exchange ${n.tempKey}` : 'n/a'}`)
  }
  for (const m of measures) {
    const med = Object.fromEntries(names.map((n) => [n, medianOf(results[m.key][n])]))
    const ha = med.haproxy
    log('')
    log(m.title)
    log('')
    log(
      `| proxy | ${m.unit} | vs HAProxy |${m.latency ? ' p50 ms | p99 ms |' : ''} proxy CPU µs per ${m.key === 'handshakes' ? 'handshake' : m.key === 'resumed' ? 'connection' : 'request'} (vs HAProxy) | proxy CPU busy |`,
    )
    log(`| --- | ---: | ---: |${m.latency ? ' ---: | ---: |' : ''} ---: | ---: |`)
    for (const name of names) {
      const x = med[name]
      log(
        `| ${name} | ${fmt(x.rps, 0)} | ${fmt(x.rps / ha.rps)}x |${m.latency ? ` ${fmt(x.p50)} | ${fmt(x.p99)} |` : ''} ${fmt(x.cpuUs, 1)} (${fmt(x.cpuUs / ha.cpuUs)}x) | ${fmt(x.busy)} |`,
      )
    }
  }
  log('')
  log(
    'busy = proxy CPU seconds per wall second (1.00: its core was the limit; lower: the client on the other core, or other work sharing the core, was)',
  )
}

try {
  await main()
} catch (err) {
  fail((err as Error).message)
} finally {
  bench.stopAll()
  await new Promise((r) => setTimeout(r, 300))
  fs.rmSync(work, { recursive: true, force: true })
}
exitOnErrors('bench/tls.ts')
