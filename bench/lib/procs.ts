/**
 * What the proxy benchmarks share: processes pinned to a CPU (proxies on CPU 0; load, backends and the
 * driver on CPU 1), their RSS and CPU time from /proc, an nginx config in a scratch folder, wrk runs parsed
 * into requests/s and latency percentiles, and medians.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fail } from './smoke.js'

/**
 * Builds dist (`npm run build`) unless bench/run.ts already did for every scenario (it sets BENCH_BUILT=1);
 * throws with the compiler's output when the build fails.
 */
export function build(root: string): void {
  if (process.env.BENCH_BUILT === '1') return
  log('building (npm run build) ...')
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stdout}${r.stderr}`)
}

export const multiCore = os.cpus().length >= 2
export const PROXY_CPU = '0'
export const LOAD_CPU = multiCore ? '1' : '0'

export function log(line: string): void {
  process.stdout.write(`${line}\n`)
}

/** One benchmark's scratch folder and child processes, all stopped when the driver exits. */
export class Bench {
  readonly work: string
  readonly #children: ChildProcess[] = []
  #stopping = false

  constructor(name: string) {
    this.work = fs.mkdtempSync(path.join(os.tmpdir(), `fleet-bench-${name}-`))
    process.on('exit', () => this.stopAll())
    // Interrupted (Ctrl-C, or bench/run.ts's timeout): stop the children and remove the scratch folder.
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const)
      process.on(signal, () => {
        this.finish()
        process.exit(code)
      })
  }

  /** Starts `cmd` pinned to `cpu` (taskset); its last output is logged if it exits with an error. */
  pinned(cpu: string, cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    const child = spawn('taskset', ['-c', cpu, cmd, ...args], {
      cwd: options.cwd ?? this.work,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout?.on('data', (d: Buffer) => {
      out = (out + d.toString()).slice(-4000)
    })
    child.stderr?.on('data', (d: Buffer) => {
      out = (out + d.toString()).slice(-4000)
    })
    child.on('exit', (code, signal) => {
      if (!this.#stopping) fail(`${cmd} exited with ${code ?? signal} before the end: ${out}`)
    })
    this.#children.push(child)
    return child
  }

  stopAll(): void {
    this.#stopping = true
    for (const c of this.#children) if (c.exitCode === null) c.kill('SIGTERM')
  }

  /** Stops every child and removes the scratch folder. */
  finish(): void {
    this.stopAll()
    fs.rmSync(this.work, { recursive: true, force: true })
  }

  /** nginx (one worker, on LOAD_CPU) serving "hello from backend N" on each of `ports`; `extra` goes in each server. */
  nginxBackends(ports: readonly number[], extra = ''): ChildProcess {
    const servers = ports
      .map(
        (p, i) =>
          `  server { listen 127.0.0.1:${p}; location / { return 200 "hello from backend ${i + 1}\\n"; } ${extra} }`,
      )
      .join('\n')
    const dir = this.nginxConf(servers, 'backends')
    return this.pinned(LOAD_CPU, 'nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')])
  }

  /**
   * HAProxy (1 thread, on PROXY_CPU) on `port`, round robin over `backends`; `defaults` adds lines there,
   * `tls` terminates TLS on the bind line (`ssl crt <pem> alpn h2,http/1.1`).
   */
  haproxy(
    port: number,
    backends: readonly number[],
    defaults: readonly string[] = [],
    tls?: { pem: string },
  ): ChildProcess {
    const file = path.join(this.work, tls ? 'haproxy-tls.cfg' : 'haproxy.cfg')
    fs.writeFileSync(
      file,
      [
        'global',
        '  nbthread 1',
        '  maxconn 9000',
        ...(tls ? ['  tune.ssl.default-dh-param 2048'] : []),
        'defaults',
        '  mode http',
        '  timeout connect 2s',
        '  timeout client 60s',
        '  timeout server 60s',
        '  timeout http-keep-alive 60s',
        '  option http-keep-alive',
        '  http-reuse always',
        ...defaults.map((l) => `  ${l}`),
        'frontend fe',
        `  bind 127.0.0.1:${port}${tls ? ` ssl crt ${tls.pem} alpn h2,http/1.1` : ''}`,
        '  default_backend be',
        'backend be',
        '  balance roundrobin',
        ...backends.map((b, i) => `  server b${i + 1} 127.0.0.1:${b}`),
        '',
      ].join('\n'),
    )
    return this.pinned(PROXY_CPU, 'haproxy', ['-db', '-f', file])
  }

  /** Fleet's LB from the light entry (`dist/cli/lb-main.js` of `root`; `dist/lb/main.js` in builds before it moved), on PROXY_CPU, in front of `backends`. */
  fleetLb(
    root: string,
    ports: { port: number; admin: number },
    backends: readonly number[],
    env: NodeJS.ProcessEnv = {},
  ): ChildProcess {
    const args = [lbEntry(root), '--port', String(ports.port), '--admin-port', String(ports.admin)]
    for (const b of backends) args.push('--upstream', `http://127.0.0.1:${b}`)
    args.push('--log-level', 'warn')
    return this.pinned(PROXY_CPU, process.execPath, args, {
      cwd: root,
      env: { NODE_ENV: 'production', ...env },
    })
  }

  /** An nginx.conf (one worker, no daemon, temp paths in the scratch folder) around `body`; returns its folder. */
  nginxConf(body: string, name: string): string {
    const dir = path.join(this.work, name)
    fs.mkdirSync(path.join(dir, 'logs'), { recursive: true })
    const file = path.join(dir, 'nginx.conf')
    fs.writeFileSync(
      file,
      `worker_processes 1;
  daemon off;
  pid ${dir}/nginx.pid;
  error_log ${dir}/logs/error.log warn;
  events { worker_connections 9000; multi_accept on; }
  http {
    access_log off;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_max_body_size 0;
  ${body}
  }
  `,
    )
    return dir
  }
}

/** Process ids of `pid` and its children (nginx master + worker). */
export function tree(pid: number): number[] {
  const out = spawnSync('pgrep', ['-P', String(pid)])
    .stdout.toString()
    .trim()
  const kids = out ? out.split('\n').map(Number) : []
  return [pid, ...kids.flatMap(tree)]
}

export function rssOf(pid: number): number {
  let total = 0
  for (const p of tree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))
      if (m) total += Number(m[1]) * 1024
    } catch {}
  }
  return total
}

export interface WrkResult {
  rps: number
  p50: number
  p99: number
  /** Requests per CPU-second of the proxy (its user + system time): robust when other load shares the CPU. */
  perCpu: number
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100)

/** User + system CPU seconds of `pid` and its children. */
export function cpuSeconds(pid: number): number {
  let ticks = 0
  for (const p of tree(pid)) {
    try {
      const f = fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')
      ticks += Number(f[11]) + Number(f[12])
    } catch {}
  }
  return ticks / CLK_TCK
}

export function parseMs(v: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(v)
  if (!m) return Number.NaN
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1)
}

export function wrk(
  port: number,
  seconds: number,
  connections: number,
  script?: string,
  pid?: number,
): WrkResult {
  const cpu0 = pid ? cpuSeconds(pid) : 0
  const args = ['-c', LOAD_CPU, 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency']
  if (script) args.push('-s', script)
  args.push(`http://127.0.0.1:${port}/`)
  const out = execFileSync('taskset', args, { encoding: 'utf8' })
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
  const p50 = parseMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '')
  const p99 = parseMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '')
  // Any error answer or socket error fails the scenario (after its figures are printed).
  for (const m of out.matchAll(/Non-2xx or 3xx responses: \d+|Socket errors: .*/g))
    fail(`wrk on port ${port}: ${m[0]}`)
  if (!Number.isFinite(rps)) fail(`wrk on port ${port} printed no Requests/sec: ${out.slice(-500)}`)
  const total = Number(/(\d+) requests in/.exec(out)?.[1])
  const perCpu = pid ? total / Math.max(0.01, cpuSeconds(pid) - cpu0) : Number.NaN
  return { rps, p50, p99, perCpu }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** The LB's light entry in the build at `root` (it moved from dist/lb/main.js to dist/cli/lb-main.js). */
export function lbEntry(root: string): string {
  const now = path.join(root, 'dist/cli/lb-main.js')
  return fs.existsSync(now) ? now : path.join(root, 'dist/lb/main.js')
}
