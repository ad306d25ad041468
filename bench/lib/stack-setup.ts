/**
 * What bench/stack.ts starts and reads: the stores (PostgreSQL from DATABASE_URL or embedded, a store and a
 * cache redis-server, a seeded catalog in a schema of its own), `fleet up`, plain `fleet web` processes, the
 * peer of bench/lib/peer.ts, one nginx in front of them; and the readings around each run: CPU ticks of
 * given processes (own, not their children's), of the whole machine and of wrk, Redis command counts, and a
 * wrk run (pinned to LOAD_CPU) that counts its requests and its errors; and the 90/10 read/write mix driver.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import pg from 'pg'
import { Pool } from 'undici'
import { requestStatus } from '../../src/stack/control.js'
import { freePort, waitForPort } from '../../src/stack/ports.js'
import { type ScratchServices, scratchUpEnv, startScratchServices } from '../../src/stack/scratch.js'
import { type Bench, LOAD_CPU, parseMs } from './procs.js'

export const root = fileURLToPath(new URL('../../', import.meta.url))
const cli = path.join(root, 'dist/cli.js')
/** Every CPU: the processes of the stack are not pinned (only wrk and the mix driver are, on LOAD_CPU). */
export const ALL_CPUS = `0-${os.cpus().length - 1}`
export const ADMIN = { email: 'bench-admin@example.com', password: 'bench-admin-password-16' }
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100)

/** The children this bench started (through Bench.pinned, unpinned), and the first that died on its own. */
export class Procs {
  readonly #list: ChildProcess[] = []
  #stopping = false
  died: string | undefined

  constructor(readonly bench: Bench) {}

  start(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = this.bench.pinned(ALL_CPUS, cmd, args, { cwd: root, env })
    child.on('exit', (code, signal) => {
      if (!this.#stopping) this.died ??= `${name} (pid ${child.pid}) exited on its own (${code ?? signal})`
    })
    this.#list.push(child)
    return child
  }

  /** Throws when a child died. */
  check(): void {
    if (this.died) throw new Error(this.died)
  }

  /** SIGTERM to each (through Bench, which then expects the exits), SIGKILL after 20 s; waits for all. */
  async stop(): Promise<void> {
    this.#stopping = true
    const alive = () => this.#list.filter((c) => c.exitCode === null && c.signalCode === null)
    const exits = alive().map((c) => new Promise((r) => c.once('exit', r)))
    this.bench.stopAll()
    const timer = setTimeout(() => {
      for (const c of alive()) c.kill('SIGKILL')
    }, 20_000)
    await Promise.all(exits)
    clearTimeout(timer)
  }
}

export interface Stores {
  databaseUrl: string
  storeUrl: string
  cacheUrl: string
  schema: string
  /** The bench's own connection to the cache Redis (INFO commandstats). */
  cache: Redis
  pids: { cacheRedis: number; storeRedis: number; postmaster: number | undefined }
  stop(): Promise<void>
}

async function redisPid(url: string): Promise<number> {
  const r = new Redis(url)
  try {
    return Number(/process_id:(\d+)/.exec(await r.info('server'))?.[1])
  } finally {
    r.disconnect()
  }
}

/**
 * PostgreSQL (DATABASE_URL, else embedded), a store and a cache redis-server, and the shop's catalog seeded
 * by `node dist/cli.js seed` into schema `bench_stack_<pid>`; stop() drops the schema and stops them.
 */
export async function startStores(products: number): Promise<Stores> {
  const stops: (() => Promise<void>)[] = []
  const stop = async () => {
    for (const s of stops.reverse())
      await s().catch((err: unknown) => process.stdout.write(`cleanup: ${err}\n`))
  }
  try {
    const main: ScratchServices = await startScratchServices({
      name: 'bench-stack',
      redisRole: 'store',
      databaseUrl: process.env.DATABASE_URL,
    })
    stops.push(() => main.stop())
    const cacheSvc = await startScratchServices({
      name: 'bench-stack-cache',
      redisRole: 'cache',
      databaseUrl: main.databaseUrl,
    })
    stops.push(() => cacheSvc.stop())
    const schema = `bench_stack_${process.pid}`
    const pool = new pg.Pool({ connectionString: main.databaseUrl, max: 1 })
    stops.push(async () => {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await pool.end()
    })
    const env = {
      ...process.env,
      DATABASE_URL: main.databaseUrl,
      FLEET_DB_SCHEMA: schema,
      FLEET_LOG_LEVEL: 'warn',
    }
    await new Promise<void>((resolve, reject) =>
      execFile(
        process.execPath,
        [cli, 'seed', '--products', String(products), '--reviews', String(2 * products)],
        { cwd: root, env },
        (err, _out, stderr) =>
          err ? reject(new Error(`fleet seed failed: ${err.message} ${stderr}`)) : resolve(),
      ),
    )
    // The postmaster is the parent of a backend (readable when PostgreSQL runs on this machine).
    const backend = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid
    const ppid = Number(readStat(backend)?.[1])
    const cache = new Redis(cacheSvc.redisUrl)
    stops.push(async () => cache.disconnect())
    return {
      databaseUrl: main.databaseUrl,
      storeUrl: main.redisUrl,
      cacheUrl: cacheSvc.redisUrl,
      schema,
      cache,
      pids: {
        cacheRedis: await redisPid(cacheSvc.redisUrl),
        storeRedis: await redisPid(main.redisUrl),
        postmaster: ppid > 1 ? ppid : undefined,
      },
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** GETs `url` until it answers 200 (every 100 ms, up to `seconds`). */
export async function waitOk(url: string, procs: Procs, seconds = 120): Promise<void> {
  for (let i = 0; ; i++) {
    procs.check()
    const res = await fetch(url).catch(() => undefined)
    await res?.body?.cancel()
    if (res?.status === 200) return
    if (i >= seconds * 10) throw new Error(`${url} does not answer 200 after ${seconds} s`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The environment of every Fleet process: the stores, the seeded schema, the admin account. */
function fleetEnv(s: Stores): Record<string, string> {
  return {
    DATABASE_URL: s.databaseUrl,
    REDIS_URL: s.storeUrl,
    CACHE_REDIS_URL: s.cacheUrl,
    FLEET_DB_SCHEMA: s.schema,
    FLEET_ADMIN_EMAIL: ADMIN.email,
    FLEET_ADMIN_PASSWORD: ADMIN.password,
  }
}

export interface FleetUp {
  lbPort: number
  supervisor: number
  lb: number
  webs: { name: string; pid: number; port: number }[]
  /** Throws when the LB or a web server of `fleet up` died since the start (restarted, or not running). */
  check(): Promise<void>
}

/**
 * `node dist/cli.js up --web 2 --workers 0` in a scratch data folder with free ports, on the stores (the
 * catalog is seeded: FLEET_SEED=false); Fleet's defaults otherwise (logging, access log, LB), but a quicker
 * stop.
 */
export async function startFleetUp(procs: Procs, s: Stores, work: string): Promise<FleetUp> {
  const dir = path.join(work, 'fleet-up')
  const env: Record<string, string> = await scratchUpEnv(dir, {
    ...fleetEnv(s),
    FLEET_SEED: 'false',
    FLEET_SHUTDOWN_TIMEOUT: '5s',
    FLEET_DRAIN_DELAY: '500ms',
  })
  delete env.FLEET_LOG_LEVEL // as shipped
  procs.start('fleet up', process.execPath, [cli, 'up', '--web', '2', '--workers', '0'], env)
  const socket = path.join(env.FLEET_DATA_DIR, 'fleet.sock')
  const logTail = (name: string) => {
    const file = path.join(env.FLEET_DATA_DIR, 'logs', `${name}.log`)
    return fs.existsSync(file) ? `\n${file}:\n${fs.readFileSync(file, 'utf8').slice(-1500)}` : ''
  }
  const status = async () => {
    for (let i = 0; ; i++) {
      procs.check()
      const report = await requestStatus(socket).catch(() => undefined)
      // A child that crashes at start is restarted after a backoff: fail at once, with its last lines.
      const crashed = report?.rows.find((r) => ['lb', 'web'].includes(r.role) && r.lastExit !== undefined)
      if (crashed)
        throw new Error(
          `fleet up: ${crashed.name} exited (${crashed.lastExit}) at start:${logTail(crashed.name)}`,
        )
      if (report?.phase === 'running') return report
      if (i > 1200) throw new Error('fleet up is not running after 120 s')
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  const report = await status()
  const lbPort = Number(env.FLEET_PORT)
  // Served through the LB once its health check has seen a web server ready (its /readyz is not forwarded).
  await waitOk(`http://127.0.0.1:${lbPort}/api/products/1`, procs)
  const row = (role: string) => report.rows.filter((r) => r.role === role && r.pid !== undefined)
  const webs = row('web').map((r) => ({ name: r.name, pid: r.pid as number, port: r.port as number }))
  const lb = row('lb')[0]?.pid
  if (webs.length !== 2 || lb === undefined)
    throw new Error('fleet up: want one LB and 2 web servers running')
  return {
    lbPort,
    supervisor: report.pid,
    lb,
    webs,
    async check() {
      const now = await requestStatus(socket)
      const moved = now.rows.filter(
        (r) => ['lb', 'web'].includes(r.role) && (r.restarts > 0 || r.state !== 'ready' || r.lastExit),
      )
      if (moved.length > 0)
        throw new Error(
          `fleet up: ${moved.map((r) => `${r.name} ${r.state}, ${r.restarts} restarts (${r.lastExit})${logTail(r.name)}`).join('\n')}`,
        )
    },
  }
}

export interface Server {
  name: string
  pid: number
  port: number
}

/** Two `fleet web` processes (not under `fleet up`) with FLEET_CACHE=false and a prefix of their own. */
export async function startUncachedFleetWebs(procs: Procs, s: Stores): Promise<Server[]> {
  const out: Server[] = []
  for (const n of [1, 2]) {
    const port = await freePort()
    const env = { ...fleetEnv(s), FLEET_WEB_PORT: String(port), FLEET_CACHE: 'false' }
    const name = `nocache-web-${n}`
    const child = procs.start(name, process.execPath, [cli, 'web'], {
      ...env,
      FLEET_REDIS_PREFIX: 'benchnocache:', // not in the registry `fleet up`'s LB reads
      FLEET_INSTANCE_ID: name,
    })
    out.push({ name, pid: child.pid as number, port })
  }
  for (const w of out) await waitOk(`http://127.0.0.1:${w.port}/readyz`, procs)
  return out
}

/** `fleet lb --engine <engine>` in front of fixed web servers; resolves once its admin port answers. */
export async function startEngineLb(
  procs: Procs,
  engine: 'node' | 'haproxy',
  upstreams: number[],
): Promise<{ pid: number; port: number }> {
  const [port, admin] = [await freePort(), await freePort()]
  const args = [cli, 'lb', '--engine', engine, '--port', String(port), '--admin-port', String(admin)]
  for (const u of upstreams) args.push('--upstream', `http://127.0.0.1:${u}`)
  const child = procs.start(`lb-${engine}`, process.execPath, args, { PATH: process.env.PATH ?? '' })
  await waitOk(`http://127.0.0.1:${admin}/status`, procs)
  return { pid: child.pid as number, port }
}

/** Two processes of bench/lib/peer.ts, cached (prefix `peer:`) or not. */
export async function startPeers(procs: Procs, s: Stores, cached: boolean): Promise<Server[]> {
  const out: Server[] = []
  for (const n of [1, 2]) {
    const port = await freePort()
    const name = `${cached ? 'peer' : 'nocache-peer'}-${n}`
    const child = procs.start(name, process.execPath, ['--import', 'tsx', 'bench/lib/peer.ts'], {
      PEER_PORT: String(port),
      DATABASE_URL: s.databaseUrl,
      PEER_DB_SCHEMA: s.schema,
      CACHE_REDIS_URL: s.cacheUrl,
      PEER_PREFIX: 'peer:',
      PEER_CACHE: String(cached),
    })
    out.push({ name, pid: child.pid as number, port })
  }
  for (const p of out) await waitForPort(p.port, '127.0.0.1', 60_000)
  return out
}

/** One nginx (1 worker, unpinned) proxying each front port to its upstreams over kept-alive connections. */
export async function startNginx(
  procs: Procs,
  fronts: { port: number; upstreams: number[] }[],
): Promise<number> {
  const servers = (ports: number[]) => ports.map((p) => `server 127.0.0.1:${p};`).join(' ')
  const location = (i: number) =>
    `proxy_pass http://u${i}; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;`
  const body = fronts
    .map(
      (f, i) => `  upstream u${i} { ${servers(f.upstreams)} keepalive 64; }
  server { listen 127.0.0.1:${f.port}; location / { ${location(i)} } }`,
    )
    .join('\n')
  const dir = procs.bench.nginxConf(body, 'nginx')
  const child = procs.start('nginx', 'nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')])
  for (const f of fronts) await waitForPort(f.port, '127.0.0.1', 30_000)
  return child.pid as number
}

/** The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1], utime [11]), if it exists. */
function readStat(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ') // the name in parentheses may hold ') '
  } catch {
    return undefined
  }
}

/** User + system CPU ticks of each process (its own, not its children's). */
export function ticks(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>()
  for (const pid of pids) {
    const f = readStat(pid)
    if (f) out.set(pid, Number(f[11]) + Number(f[12]))
  }
  return out
}

/** CPU seconds between two `ticks` readings (a process that started in between counts from 0). */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0
  for (const [pid, t] of after) sum += t - (before.get(pid) ?? 0)
  return sum / CLK_TCK
}

/** Busy CPU seconds of the whole machine so far (every CPU: all but idle and iowait), from /proc/stat. */
export function machineBusy(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0)
  return (total - f[3] - f[4]) / CLK_TCK
}

/** CPU seconds of this process's children that have exited and been waited for (cutime + cstime). */
function reapedChildrenCpu(): number {
  const f = readStat(process.pid) ?? []
  return (Number(f[13]) + Number(f[14])) / CLK_TCK
}

/**
 * Commands the clients of `redis` send per request of a short wrk run on `port` (4 connections, 1 s), as
 * MONITOR sees them: round trips, a script counting once (the calls a script makes inside show as `lua` and
 * are left out). MONITOR slows Redis, so this runs apart from the timed rounds. It reads MONITOR through
 * `redis-cli` (installed with redis-server): ioredis's own monitor() mixed a MONITOR line up with a queued
 * reply on a fresh clone in CI ("Command queue state error", an unhandled error that killed the bench).
 */
export async function roundTrips(redis: Redis, port: number, script: string): Promise<number> {
  const { host = '127.0.0.1', port: redisPort = 6379, password } = redis.options
  const args = [
    '-h',
    host,
    '-p',
    String(redisPort),
    ...(password ? ['--no-auth-warning', '-a', password] : []),
    'monitor',
  ]
  const cli = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'inherit'] })
  let sent = 0
  let started: () => void = () => {}
  const ok = new Promise<void>((resolve, reject) => {
    started = resolve
    cli.once('error', reject)
    cli.once('exit', (code) => reject(new Error(`redis-cli monitor exited (${code}) before it started`)))
  })
  let rest = ''
  cli.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) {
      if (line.trim() === 'OK') started()
      else if (/^\d+\.\d+ \[\d+ /.test(line) && !/^\S+ \[\d+ lua\]/.test(line)) sent++
    }
  })
  try {
    await ok
    const w = await runWrk(port, 1, 4, script)
    await new Promise((r) => setTimeout(r, 200))
    return sent / w.requests
  } finally {
    cli.kill()
  }
}

/** Commands Redis executed, by name (INFO commandstats: the calls a script makes inside count too). */
export async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    if (m[1] !== 'info') out.set(m[1], Number(m[2]))
  return out
}

export interface WrkRun {
  requests: number
  rps: number
  /** ms */
  p50: number
  p99: number
  /** CPU seconds of wrk itself. */
  cpu: number
}

/** wrk -t1 on LOAD_CPU with `script`; rejects on any non-2xx answer or socket error. */
export function runWrk(port: number, seconds: number, connections: number, script: string): Promise<WrkRun> {
  const args = ['-c', LOAD_CPU, 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script]
  const cpu0 = reapedChildrenCpu() // only wrk exits and is waited for until it is read again
  return new Promise((resolve, reject) =>
    execFile('taskset', [...args, `http://127.0.0.1:${port}/`], { encoding: 'utf8' }, (err, out) => {
      const cpu = reapedChildrenCpu() - cpu0
      if (err) return reject(err)
      const errors = /Non-2xx or 3xx responses: \d+|Socket errors: .*/.exec(out)
      if (errors) return reject(new Error(`wrk on port ${port}: ${errors[0]}`))
      resolve({
        requests: Number(/(\d+) requests in/.exec(out)?.[1]),
        rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
        p50: parseMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ''),
        p99: parseMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ''),
        cpu,
      })
    }),
  )
}

/**
 * The pids of `pid` and its descendants (nginx master and worker; the postmaster and its backends), from one
 * scan of /proc (procs.ts `tree` runs pgrep once per process: slow for PostgreSQL on a busy machine).
 */
export function treeOf(pid: number | undefined): number[] {
  if (pid === undefined) return []
  const children = new Map<number, number[]>()
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const ppid = Number(readStat(Number(entry))?.[1])
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
  }
  const out = [pid]
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []))
  return out
}

/** A process, or several, whose CPU counts for a contender; `app` marks its web servers (or peers). */
export interface Group {
  label: string
  pids: () => number[]
  app?: boolean
}

export interface Contender {
  key: string
  label: string
  /** Where wrk and the mix driver send requests (an LB or nginx). */
  port: number
  groups: Group[]
  /** How the mix changes a product: Fleet's admin PATCH (with the admin's cookie) or the peer's PUT. */
  write: { method: 'PATCH' | 'PUT'; headers: Record<string, string> }
}

export interface MixResult {
  rps: number
  gets: number
  writes: number
  /** GETs that started after a write of their id was acknowledged and answered an older version. */
  stale: number
}

/**
 * The 90/10 mix on `c` for `seconds`: `connections` loops over one undici Pool, each request a GET of a random
 * id, or (one in ten) a write of a new price to it. The driver keeps, per id, the highest version a write
 * answered; a GET compares the version it gets with the one acknowledged when it started. Throws on any
 * answer but 200.
 */
export async function runMix(
  c: Contender,
  o: { seconds: number; connections: number; range: number },
): Promise<MixResult> {
  const pool = new Pool(`http://127.0.0.1:${c.port}`, {
    connections: o.connections,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  })
  const acked = new Map<number, number>()
  const out = { gets: 0, writes: 0, stale: 0 }
  let failure: Error | undefined
  const start = performance.now()
  const deadline = start + o.seconds * 1000
  const once = async () => {
    const id = 1 + Math.floor(Math.random() * o.range)
    const write = Math.random() < 0.1
    const floor = acked.get(id) ?? 0
    const res = await pool.request({
      method: write ? c.write.method : 'GET',
      path: `/api/products/${id}`,
      ...(write
        ? {
            headers: { ...c.write.headers, 'content-type': 'application/json' },
            body: JSON.stringify({ priceCents: 100 + Math.floor(Math.random() * 100_000) }),
          }
        : {}),
    })
    const text = await res.body.text()
    if (res.statusCode !== 200)
      throw new Error(
        `${c.key}: ${write ? c.write.method : 'GET'} /api/products/${id} answered ${res.statusCode}: ${text}`,
      )
    const { version } = JSON.parse(text) as { version: number }
    if (write) {
      out.writes++
      if (version > (acked.get(id) ?? 0)) acked.set(id, version)
    } else {
      out.gets++
      if (version < floor) out.stale++
    }
  }
  await Promise.all(
    Array.from({ length: o.connections }, async () => {
      while (!failure && performance.now() < deadline)
        await once().catch((err: unknown) => {
          failure ??= err instanceof Error ? err : new Error(String(err))
        })
    }),
  )
  const seconds = (performance.now() - start) / 1000
  await pool.close()
  if (failure) throw failure
  return { ...out, rps: (out.gets + out.writes) / seconds }
}
