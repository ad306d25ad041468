/**
 * A Redis Sentinel deployment on loopback for tests: a primary, its replicas and three Sentinels, real
 * `redis-server` processes (a Sentinel is `redis-server <file> --sentinel`, what `redis-sentinel` runs) on free ports in a temporary folder, watching one master
 * name (quorum 2, `down-after-milliseconds` 1000, `failover-timeout` 3000). Faults are real signals to real
 * processes (SIGKILL, SIGSTOP/SIGCONT). `stop()` SIGKILLs every process it started and removes the folder.
 * With `tls`, every server and Sentinel speaks TLS only (`port 0`, `tls-port`; replication and the Sentinels'
 * links over TLS too; no client certificates asked), and the bed's own commands go over TLS.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { ConnectionOptions } from 'node:tls'
import { Redis } from 'ioredis'
import { freePort } from '../../src/stack/ports.js'
import { exited } from '../support/processes.js'
import { testRedisArgs } from '../support/redis-server.js'
import { waitFor } from '../support/wait.js'

export interface BedOptions {
  masterName?: string
  replicas?: number
  sentinels?: number
  /** Extra `redis-server` arguments for every server (e.g. ['--min-replicas-to-write', '1']). */
  serverArgs?: string[]
  /** TLS only, with this certificate (for 127.0.0.1) and the CA that signed it. */
  tls?: BedTls
}

export interface BedTls {
  certFile: string
  keyFile: string
  caFile: string
}

interface Proc {
  port: number
  child: ChildProcess
}

/** Sends one command to 127.0.0.1:port on a short-lived connection (no retries). */
export async function ask(port: number, ...args: (string | number)[]): Promise<unknown> {
  return askOver(undefined, port, args)
}

/** `ask`, over TLS when `tls` is given. */
async function askOver(
  tls: ConnectionOptions | undefined,
  port: number,
  args: (string | number)[],
): Promise<unknown> {
  const r = new Redis({
    port,
    host: '127.0.0.1',
    tls,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 1_000,
    commandTimeout: 2_000,
  })
  r.on('error', () => {})
  try {
    await r.connect()
    return await r.call(String(args[0]), ...args.slice(1).map(String))
  } finally {
    r.disconnect()
  }
}

export class SentinelBed {
  readonly masterName: string
  readonly dir: string
  readonly servers: Proc[] = []
  readonly sentinels: Proc[] = []
  /** Servers of other masters the Sentinels watch (addMaster). */
  readonly others: Proc[] = []
  readonly #options: BedOptions
  readonly #tls: ConnectionOptions | undefined

  private constructor(dir: string, options: BedOptions) {
    this.dir = dir
    this.masterName = options.masterName ?? 'fleetstore'
    this.#options = options
    this.#tls = options.tls ? { ca: readFileSync(options.tls.caFile) } : undefined
  }

  /** `ask` of this bed: over TLS when it has TLS. */
  ask(port: number, ...args: (string | number)[]): Promise<unknown> {
    return askOver(this.#tls, port, args)
  }

  /** Starts the servers and Sentinels; resolves once every Sentinel sees the primary, its replicas and quorum. */
  static async start(options: BedOptions = {}): Promise<SentinelBed> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-sentinel-'))
    const bed = new SentinelBed(dir, options)
    try {
      await bed.#startAll()
    } catch (err) {
      await bed.stop()
      throw err
    }
    return bed
  }

  /** The Sentinel URL of this deployment, as REDIS_URL takes it (`rediss+sentinel://` with TLS). */
  url(query = ''): string {
    const hosts = this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')
    const scheme = this.#options.tls ? 'rediss+sentinel' : 'redis+sentinel'
    return `${scheme}://${hosts}/${this.masterName}${query ? `?${query}` : ''}`
  }

  /** The port of the primary as a majority of the Sentinels name it now. */
  async primaryPort(): Promise<number> {
    const votes = new Map<number, number>()
    for (const s of this.sentinels) {
      const addr = (await this.ask(s.port, 'SENTINEL', 'get-master-addr-by-name', this.masterName).catch(
        () => null,
      )) as string[] | null
      if (addr) votes.set(Number(addr[1]), (votes.get(Number(addr[1])) ?? 0) + 1)
    }
    const [port, n] = [...votes].sort((a, b) => b[1] - a[1])[0] ?? [0, 0]
    if (n < 2) throw new Error('no majority of the Sentinels names a primary')
    return port
  }

  /** The server process on `port`. */
  server(port: number): Proc {
    const p = this.servers.find((s) => s.port === port)
    if (!p) throw new Error(`no server of this bed on port ${port}`)
    return p
  }

  /** Ports of the servers that are replicas now (by their own INFO). */
  async replicaPorts(): Promise<number[]> {
    const out: number[] = []
    for (const s of this.servers) {
      const role = (await this.ask(s.port, 'ROLE').catch(() => null)) as unknown[] | null
      if (role?.[0] === 'slave') out.push(s.port)
    }
    return out
  }

  /** Sends `signal` to the server on `port` (SIGKILL: it is gone for good). */
  signal(port: number, signal: NodeJS.Signals): void {
    this.server(port).child.kill(signal)
  }

  /**
   * Resolves with the new primary's port once a majority of the Sentinels names one other than `oldPort`
   * and it answers as a primary.
   */
  async failedOver(oldPort: number, timeoutMs = 30_000): Promise<number> {
    return waitFor(
      `a failover away from ${oldPort}`,
      async () => {
        const port = await this.primaryPort()
        if (port === oldPort) return undefined
        const role = (await this.ask(port, 'ROLE')) as unknown[]
        return role[0] === 'master' ? port : undefined
      },
      timeoutMs,
      50,
    )
  }

  /**
   * Starts the server that ran on `port` again (after a SIGKILL), with its first arguments but no
   * `--replicaof`: the Sentinels turn it into a replica of the current primary; resolves once it is one.
   */
  async restart(port: number): Promise<void> {
    const old = this.server(port)
    if (old.child.pid && !exited(old.child.pid)) throw new Error(`the server on ${port} still runs`)
    const args = (old.child.spawnargs.slice(1) as string[]).filter(
      (_, i, all) => all[i] !== '--replicaof' && all[i - 1] !== '--replicaof' && all[i - 2] !== '--replicaof',
    )
    old.child = await this.#spawn('redis-server', args, `redis-${port}`)
    await this.isReplica(port)
  }

  /** Resolves once the server on `port` is a replica whose link to its primary is up. */
  async isReplica(port: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      `the server on ${port} to be a replica in sync`,
      async () => {
        const info = String(await this.ask(port, 'INFO', 'replication'))
        return /role:slave/.test(info) && /master_link_status:up/.test(info) ? true : undefined
      },
      timeoutMs,
      50,
    )
  }

  /**
   * Makes the Sentinels watch another master too, `name`: a primary and a replica of its own (as the store
   * and the cache share Sentinels); returns the primary's port.
   */
  async addMaster(name: string): Promise<number> {
    const primary = await this.#startServer(undefined, this.others)
    await this.#startServer(primary.port, this.others)
    await waitFor(`${name}'s replica to sync`, async () =>
      /slave0:.*state=online/.test(String(await this.ask(primary.port, 'INFO', 'replication')))
        ? true
        : undefined,
    )
    for (const s of this.sentinels) {
      await this.ask(s.port, 'SENTINEL', 'MONITOR', name, '127.0.0.1', primary.port, 2)
      await this.ask(
        s.port,
        'SENTINEL',
        'SET',
        name,
        'down-after-milliseconds',
        1000,
        'failover-timeout',
        3000,
      )
    }
    await waitFor(
      `the Sentinels to know ${name}`,
      async () => {
        for (const s of this.sentinels) {
          if (!String(await this.ask(s.port, 'SENTINEL', 'CKQUORUM', name)).startsWith('OK')) return undefined
          const known = (await this.ask(s.port, 'SENTINEL', 'REPLICAS', name)) as unknown[]
          const others = (await this.ask(s.port, 'SENTINEL', 'SENTINELS', name)) as unknown[]
          if (known.length !== 1 || others.length !== this.sentinels.length - 1) return undefined
        }
        return true
      },
      30_000,
      100,
    )
    return primary.port
  }

  /** SIGKILLs every Sentinel (a rolling restart gone wrong); `startSentinels` brings them back. */
  async killSentinels(): Promise<void> {
    for (const s of this.sentinels) s.child.kill('SIGKILL')
    await waitFor('the Sentinels to exit', async () =>
      this.sentinels.every((s) => !s.child.pid || exited(s.child.pid)) ? true : undefined,
    )
  }

  /** Starts the killed Sentinels again on their ports, with the configuration they last wrote. */
  async startSentinels(): Promise<void> {
    for (const s of this.sentinels) {
      s.child = await this.#spawn(
        'redis-server',
        [path.join(this.dir, `sentinel-${s.port}.conf`), '--sentinel'],
        `sentinel-${s.port}`,
      )
    }
    await this.steady()
  }

  /**
   * Resolves once every Sentinel answers, out of TILT mode (a Sentinel that was stopped for 2 s or more acts
   * on nothing for 30 s after), with quorum for the master.
   */
  async steady(timeoutMs = 45_000): Promise<void> {
    await waitFor(
      'the Sentinels to be steady',
      async () => {
        for (const s of this.sentinels) {
          if (!/sentinel_tilt:0/.test(String(await this.ask(s.port, 'INFO', 'sentinel')))) return undefined
          const quorum = String(await this.ask(s.port, 'SENTINEL', 'CKQUORUM', this.masterName))
          if (!quorum.startsWith('OK')) return undefined
        }
        return true
      },
      timeoutMs,
      100,
    )
  }

  /** SIGKILLs every process this bed started (also stopped ones) and removes its folder. */
  async stop(): Promise<void> {
    const all = [...this.sentinels, ...this.servers, ...this.others]
    for (const p of all) {
      if (p.child.pid && !exited(p.child.pid)) {
        p.child.kill('SIGCONT')
        p.child.kill('SIGKILL')
      }
    }
    await waitFor(
      'the bed processes to exit',
      async () => (all.every((p) => !p.child.pid || exited(p.child.pid)) ? true : undefined),
      10_000,
      20,
    ).catch(() => {})
    await fs.rm(this.dir, { recursive: true, force: true })
  }

  async #startAll(): Promise<void> {
    const replicas = this.#options.replicas ?? 2
    const sentinels = this.#options.sentinels ?? 3
    const primary = await this.#startServer()
    for (let i = 0; i < replicas; i++) await this.#startServer(primary.port)
    await waitFor(
      'the replicas to sync',
      async () => {
        const info = String(await this.ask(primary.port, 'INFO', 'replication'))
        const online = info.match(/^slave\d+:.*state=online/gm) ?? []
        return online.length === replicas ? true : undefined
      },
      20_000,
    )
    for (let i = 0; i < sentinels; i++) await this.#startSentinel(primary.port)
    await waitFor(
      'the Sentinels to see the primary, its replicas and each other',
      async () => {
        for (const s of this.sentinels) {
          const quorum = String(await this.ask(s.port, 'SENTINEL', 'CKQUORUM', this.masterName))
          if (!quorum.startsWith('OK')) return undefined
          const others = (await this.ask(s.port, 'SENTINEL', 'SENTINELS', this.masterName)) as unknown[]
          const known = (await this.ask(s.port, 'SENTINEL', 'REPLICAS', this.masterName)) as unknown[]
          if (others.length !== sentinels - 1 || known.length !== replicas) return undefined
        }
        return true
      },
      30_000,
      100,
    )
  }

  async #spawn(command: string, args: string[], name: string): Promise<ChildProcess> {
    const log = await fs.open(path.join(this.dir, `${name}.log`), 'a')
    const child = spawn(command, args, { cwd: this.dir, stdio: ['ignore', log.fd, log.fd] })
    child.on('error', () => {}) // a missing program shows as a server that never answers
    await log.close()
    return child
  }

  async #startServer(primaryPort?: number, list: Proc[] = this.servers): Promise<Proc> {
    const port = await freePort()
    const dir = path.join(this.dir, `redis-${port}`)
    await fs.mkdir(dir)
    const tls = this.#options.tls
    const args = [
      ...testRedisArgs(port, dir, primaryPort),
      // (A later --port wins over testRedisArgs' one: TLS only, on the same port number.)
      ...(tls
        ? ['--port', '0', '--tls-port', String(port), ...tlsConf(tls).flatMap(([k, v]) => [`--${k}`, v])]
        : []),
      '--enable-debug-command',
      'local',
      ...(this.#options.serverArgs ?? []),
    ]
    const child = await this.#spawn('redis-server', args, `redis-${port}`)
    const proc = { port, child }
    list.push(proc)
    await waitFor(`redis-server on ${port}`, async () =>
      (await this.ask(port, 'PING')) === 'PONG' ? true : undefined,
    )
    return proc
  }

  async #startSentinel(primaryPort: number): Promise<Proc> {
    const port = await freePort()
    const file = path.join(this.dir, `sentinel-${port}.conf`)
    const name = this.masterName
    const tls = this.#options.tls
    await fs.writeFile(
      file,
      [
        ...(tls
          ? ['port 0', `tls-port ${port}`, ...tlsConf(tls).map(([k, v]) => `${k} ${v}`)]
          : [`port ${port}`]),
        'bind 127.0.0.1',
        `dir ${this.dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 3000`,
        `sentinel parallel-syncs ${name} 2`,
        '',
      ].join('\n'),
    )
    // `redis-server <file> --sentinel` is what the redis-sentinel program runs (a link to redis-server).
    const child = await this.#spawn('redis-server', [file, '--sentinel'], `sentinel-${port}`)
    const proc = { port, child }
    this.sentinels.push(proc)
    await waitFor(`redis-sentinel on ${port}`, async () =>
      (await this.ask(port, 'PING')) === 'PONG' ? true : undefined,
    )
    return proc
  }
}

/**
 * The TLS settings of a server of a TLS bed: its certificate, the CA it checks its peers' with (its primary's
 * and the Sentinels' when it connects to them), no client certificates asked, replication over TLS (for a
 * Sentinel: its links to the servers and the other Sentinels).
 */
function tlsConf(tls: BedTls): [string, string][] {
  return [
    ['tls-cert-file', tls.certFile],
    ['tls-key-file', tls.keyFile],
    ['tls-ca-cert-file', tls.caFile],
    ['tls-auth-clients', 'no'],
    ['tls-replication', 'yes'],
  ]
}
