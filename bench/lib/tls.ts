/**
 * What bench/tls.ts needs beside bench/lib/procs.ts: a self-signed certificate made with openssl, HAProxy with
 * TLS, load over HTTPS (h2load from nghttp2-client for fresh handshakes and HTTP/2, wrk for HTTPS HTTP/1.1),
 * each run's answers checked, and probes of a TLS port (ALPN, the answer, session resumption) with Node's
 * clients.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import http2 from 'node:http2'
import https from 'node:https'
import path from 'node:path'
import tls from 'node:tls'
import { cpuSeconds, LOAD_CPU, median, parseMs } from './procs.js'
import { fail } from './smoke.js'

export interface Certificate {
  cert: string
  key: string
  /** The certificate followed by its key, the one file HAProxy's `crt` reads. */
  pem: string
  /** What the key is, for the report (`ECDSA P-256`, `RSA 2048`). */
  label: string
}

/**
 * A self-signed certificate for localhost and 127.0.0.1 in `dir`, with openssl: an ECDSA P-256 key (`ec`) or
 * an RSA 2048 one (`rsa`).
 */
export function makeCertificate(dir: string, kind: 'ec' | 'rsa'): Certificate {
  const cert = path.join(dir, 'cert.pem')
  const key = path.join(dir, 'key.pem')
  const pem = path.join(dir, 'haproxy.pem')
  const newKey =
    kind === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      ...newKey,
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  fs.writeFileSync(pem, fs.readFileSync(cert, 'utf8') + fs.readFileSync(key, 'utf8'))
  return { cert, key, pem, label: kind === 'rsa' ? 'RSA 2048' : 'ECDSA P-256' }
}

/** The `listen` line and directives that turn on TLS and HTTP/2 in this nginx (`http2 on` from 1.25.1). */
export function nginxTlsListen(port: number, c: Certificate): string {
  const v = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr)
  const [major, minor, patch] = v ? v.slice(1).map(Number) : [0, 0, 0]
  const newStyle = major > 1 || minor > 25 || (minor === 25 && patch >= 1)
  return [
    newStyle ? `listen 127.0.0.1:${port} ssl; http2 on;` : `listen 127.0.0.1:${port} ssl http2;`,
    `ssl_certificate ${c.cert};`,
    `ssl_certificate_key ${c.key};`,
    // nginx before 1.23.4 offers TLS 1.2 at most unless told; HAProxy and Node offer 1.3.
    'ssl_protocols TLSv1.2 TLSv1.3;',
  ].join('\n    ')
}

/** What a TLS run negotiated (h2load prints it for its first connection). */
export interface Negotiated {
  protocol: string
  cipher: string
  tempKey: string
  alpn: string
}

export interface H2Result {
  /** Requests (or, one request per connection, handshakes) per second. */
  rps: number
  /** ms; NaN where the run gives no percentiles. */
  p50: number
  p99: number
  /** Proxy CPU µs per request (its process tree's user + system time). */
  cpuUs: number
  /** Proxy CPU seconds per wall second (1 = one core busy). */
  busy: number
  negotiated?: Negotiated
}

/** The counters of one h2load run, checked: any request not answered 2xx is recorded with `fail`. */
function checkH2load(
  out: string,
  what: string,
  alpn: string,
): { succeeded: number; negotiated?: Negotiated } {
  const r =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out,
    )
  const s = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out)
  if (!r || !s) {
    fail(`${what}: h2load printed no counts: ${out.slice(-600)}`)
    return { succeeded: 0 }
  }
  const [total, , done, succeeded, failed, errored, timeout] = r.slice(1).map(Number)
  const [ok, s3, s4, s5] = s.slice(1).map(Number)
  if (
    failed + errored + timeout > 0 ||
    succeeded < done ||
    done < total ||
    s3 + s4 + s5 > 0 ||
    ok < succeeded
  )
    fail(`${what}: ${r[0]}; ${s[0]}`)
  // A client whose connection the server closed (GOAWAY, a max-requests limit) stops for the rest of the run.
  const stopped = out.match(/Process Request Failure/g)?.length ?? 0
  if (stopped > 0)
    fail(`${what}: ${stopped} client(s) could not send a request (connection closed by the server)`)
  const field = (name: string) => new RegExp(`${name}: (.*)`).exec(out)?.[1]?.trim() ?? '?'
  const negotiated = {
    protocol: field('TLS Protocol'),
    cipher: field('Cipher'),
    tempKey: field('Server Temp Key'),
    alpn: field('Application protocol'),
  }
  if (negotiated.alpn !== alpn) fail(`${what}: ALPN chose ${negotiated.alpn}, not ${alpn}`)
  return { succeeded, negotiated }
}

const h2loadBin = (args: string[]) => ['-c', LOAD_CPU, 'h2load', ...args]

/**
 * Fresh TLS handshakes, HTTP/1.1, one request per connection: `workers` h2load processes side by side on
 * LOAD_CPU, each running `h2load --h1 -n B -c B` (B clients, one connection and one request each, no session
 * resumption) again and again for `seconds`. Handshakes/s is every succeeded request over the wall time.
 */
export async function handshakes(
  url: string,
  o: { seconds: number; batch: number; workers: number; pid?: number; what: string },
): Promise<H2Result> {
  const cpu0 = o.pid ? cpuSeconds(o.pid) : 0
  const t0 = performance.now()
  const deadline = t0 + o.seconds * 1000
  let count = 0
  let negotiated: Negotiated | undefined
  const worker = async () => {
    while (performance.now() < deadline) {
      const out = await new Promise<string>((resolve) =>
        execFile(
          'taskset',
          h2loadBin(['--h1', '-n', String(o.batch), '-c', String(o.batch), url]),
          { encoding: 'utf8', maxBuffer: 16 * 1024 ** 2 },
          (err, stdout, stderr) => {
            if (err) fail(`${o.what}: h2load: ${err.message} ${stderr.slice(-300)}`)
            resolve(stdout)
          },
        ),
      )
      const r = checkH2load(out, o.what, 'http/1.1')
      count += r.succeeded
      negotiated ??= r.negotiated
      if (r.succeeded === 0) break
    }
  }
  await Promise.all(Array.from({ length: o.workers }, worker))
  const wall = (performance.now() - t0) / 1000
  const cpu = o.pid ? cpuSeconds(o.pid) - cpu0 : Number.NaN
  return {
    rps: count / wall,
    p50: Number.NaN,
    p99: Number.NaN,
    cpuUs: (cpu / Math.max(1, count)) * 1e6,
    busy: cpu / wall,
    negotiated,
  }
}

/**
 * HTTP/2 over TLS: `h2load -c <clients> -m <streams> -D <seconds>` (one thread on LOAD_CPU), requests/s as h2load
 * counts them; p50 and p99 from its per-request log (`--log-file` in `logDir`).
 */
export function h2Streams(
  url: string,
  o: { seconds: number; clients: number; streams: number; pid?: number; logDir: string; what: string },
): H2Result {
  const log = path.join(o.logDir, 'h2load.log')
  fs.rmSync(log, { force: true })
  const cpu0 = o.pid ? cpuSeconds(o.pid) : 0
  const t0 = performance.now()
  const r = spawnSync(
    'taskset',
    h2loadBin([
      '-c',
      String(o.clients),
      '-m',
      String(o.streams),
      '-D',
      String(Math.max(1, Math.round(o.seconds))),
      `--log-file=${log}`,
      url,
    ]),
    { encoding: 'utf8', maxBuffer: 64 * 1024 ** 2 },
  )
  const wall = (performance.now() - t0) / 1000
  const cpu = o.pid ? cpuSeconds(o.pid) - cpu0 : Number.NaN
  if (r.status !== 0) fail(`${o.what}: h2load exited with ${r.status ?? r.signal}: ${r.stderr.slice(-300)}`)
  const checked = checkH2load(r.stdout, o.what, 'h2')
  const rps = Number(/finished in [^,]+, ([\d.]+) req\/s/.exec(r.stdout)?.[1])
  if (!Number.isFinite(rps)) fail(`${o.what}: h2load printed no req/s: ${r.stdout.slice(-400)}`)
  // Each log line: start time (µs since the epoch), status, duration (µs).
  const durations: number[] = []
  if (fs.existsSync(log))
    for (const line of fs.readFileSync(log, 'utf8').split('\n')) {
      const d = Number(line.split('\t')[2])
      if (line && Number.isFinite(d)) durations.push(d)
    }
  fs.rmSync(log, { force: true })
  const sorted = Float64Array.from(durations).sort()
  const at = (q: number) =>
    sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] / 1000 : Number.NaN
  return {
    rps,
    p50: at(0.5),
    p99: at(0.99),
    cpuUs: (cpu / Math.max(1, checked.succeeded)) * 1e6,
    busy: cpu / wall,
    negotiated: checked.negotiated,
  }
}

/**
 * wrk -t1 on LOAD_CPU against `url` (https here), `headers` added to every request; an error answer or a socket
 * error is recorded with `fail`. (procs.ts `wrk` does the same for http://127.0.0.1:<port>/.)
 */
export function wrkUrl(
  url: string,
  o: { seconds: number; connections: number; headers?: string[]; pid?: number; what: string },
): H2Result {
  const args = ['-c', LOAD_CPU, 'wrk', '-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency']
  for (const h of o.headers ?? []) args.push('-H', h)
  args.push(url)
  const cpu0 = o.pid ? cpuSeconds(o.pid) : 0
  const t0 = performance.now()
  const r = spawnSync('taskset', args, { encoding: 'utf8' })
  const wall = (performance.now() - t0) / 1000
  const cpu = o.pid ? cpuSeconds(o.pid) - cpu0 : Number.NaN
  const out = r.stdout ?? ''
  if (r.status !== 0) fail(`${o.what}: wrk exited with ${r.status ?? r.signal}: ${r.stderr}`)
  for (const m of out.matchAll(/Non-2xx or 3xx responses: \d+|Socket errors: .*/g))
    fail(`${o.what}: wrk: ${m[0]}`)
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
  if (!Number.isFinite(rps)) fail(`${o.what}: wrk printed no Requests/sec: ${out.slice(-400)} ${r.stderr}`)
  const total = Number(/(\d+) requests in/.exec(out)?.[1])
  return {
    rps,
    p50: parseMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99: parseMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    cpuUs: (cpu / Math.max(1, total)) * 1e6,
    busy: cpu / wall,
  }
}

/** The medians of several runs, field by field. */
export function medianOf(runs: readonly H2Result[]): H2Result {
  const m = (k: 'rps' | 'p50' | 'p99' | 'cpuUs' | 'busy') => median(runs.map((r) => r[k]))
  return { rps: m('rps'), p50: m('p50'), p99: m('p99'), cpuUs: m('cpuUs'), busy: m('busy') }
}

/** One GET over HTTPS (HTTP/1.1) trusting `ca`: status, body, and the ALPN protocol of the connection. */
function httpsGet(port: number, ca: string): Promise<{ status: number; body: string; alpn: string }> {
  return new Promise((resolve, reject) => {
    // https.request hands these options to tls.connect, ALPNProtocols included.
    const options: https.RequestOptions & tls.ConnectionOptions = {
      host: '127.0.0.1',
      port,
      path: '/',
      ca,
      servername: 'localhost',
      agent: false,
      ALPNProtocols: ['http/1.1'],
    }
    const req = https.get(options, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => {
        body += c.toString()
      })
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          alpn: String((res.socket as tls.TLSSocket).alpnProtocol),
        }),
      )
    })
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')))
    req.on('error', reject)
  })
}

/** One GET over HTTP/2 (ALPN h2) trusting `ca`: status and body. */
function h2Get(port: number, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' })
    session.on('error', reject)
    const req = session.request({ ':path': '/' })
    let status = 0
    let body = ''
    req.on('response', (h) => {
      status = Number(h[':status'])
    })
    req.on('data', (c: Buffer) => {
      body += c.toString()
    })
    req.on('end', () => {
      session.close()
      resolve({ status, body })
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.close(http2.constants.NGHTTP2_CANCEL))
  })
}

/** Whether the server at `port` resumes a TLS session (a second connection offering the first one's ticket). */
async function resumes(port: number, ca: string): Promise<boolean> {
  const connect = (session?: Buffer) =>
    new Promise<{ reused: boolean; session?: Buffer }>((resolve, reject) => {
      let got: Buffer | undefined
      const s = tls.connect({
        host: '127.0.0.1',
        port,
        ca,
        servername: 'localhost',
        session,
        ALPNProtocols: ['http/1.1'],
      })
      s.on('session', (b: Buffer) => {
        got = b
      })
      s.once('secureConnect', () => {
        // TLS 1.3 sends its tickets after the handshake: ask for an answer, then close.
        s.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
      })
      s.on('data', () => {})
      s.once('end', () => resolve({ reused: s.isSessionReused(), session: got }))
      s.once('error', reject)
      s.setTimeout(10_000, () => s.destroy(new Error('timed out')))
    })
  const first = await connect()
  if (!first.session) return false
  return (await connect(first.session)).reused
}

/**
 * Checks a TLS port before it is measured: an HTTP/1.1 GET (ALPN http/1.1) and an HTTP/2 GET (ALPN h2) both
 * answer 200 with a backend's body; returns whether the port resumes TLS sessions. Failures are recorded.
 */
export async function probeTls(name: string, port: number, ca: string, bodyRe: RegExp): Promise<boolean> {
  try {
    const h1 = await httpsGet(port, ca)
    if (h1.status !== 200 || !bodyRe.test(h1.body) || h1.alpn !== 'http/1.1')
      fail(`${name}: HTTPS/1.1 GET answered ${h1.status} over ${h1.alpn}: ${h1.body.slice(0, 200)}`)
    const h2 = await h2Get(port, ca)
    if (h2.status !== 200 || !bodyRe.test(h2.body))
      fail(`${name}: HTTP/2 GET answered ${h2.status}: ${h2.body.slice(0, 200)}`)
    return await resumes(port, ca)
  } catch (err) {
    fail(`${name}: ${(err as Error).message}`)
    return false
  }
}
