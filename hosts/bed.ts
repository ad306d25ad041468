/**
 * The multi-host test bed: builds a topology's hosts as network namespaces (net.ts), starts what deploy/
 * says on each (services.ts), knows when the whole bed is healthy, powers hosts off and on and pulls their
 * cable, and removes everything it made: processes, namespaces, links, files. A second bed of the same
 * prefix removes what a dead first one left; one that is still running (its pid alive) is refused.
 *
 * @example
 * const bed = new Bed(small, { prefix: 'fleetbt', subnet: '10.77.1' })
 * try { await bed.up(); ... await bed.powerOff('web1') } finally { await bed.down() }
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { deployDir, root } from './deploy.js'
import { killNamespace, Network } from './net.js'
import { createDatabase, initCluster } from './postgres.js'
import { httpOk, lbEligible, redisInfo, sentinelPrimary } from './probes.js'
import type { Service } from './proc.js'
import {
  addrOf,
  type BedSettings,
  fleetStart,
  hostFolder,
  LB_ADMIN_PORT,
  LB_PORT,
  servicesOf,
  WEB_PORT,
  WORKER_PORT,
} from './services.js'
import { ensureTools } from './tools.js'
import { type HostDef, hostsWith, type Role, type Topology } from './topology.js'

export interface BedOptions {
  /** Names every namespace, link and folder of this bed (`fleetbed` for npm run hosts). */
  prefix: string
  /** The first three octets of the bed's /24. */
  subnet: string
  /** The Fleet installation the hosts run (a folder with dist/cli.js; default: this checkout). */
  fleetDir?: string
  /** The app (default: the chaos suite's app of that installation). */
  app?: string
  admin?: { email: string; password: string }
  /** Progress lines. */
  log?: (line: string) => void
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `fn` until it is truthy or `ms` passed; resolves with whether it became truthy. */
export async function waitFor(fn: () => Promise<unknown>, ms: number, every = 200): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return true
    await sleep(every)
  }
  return false
}

export class Bed {
  readonly net: Network
  readonly settings: BedSettings
  readonly services = new Map<string, Service[]>()
  /** Hosts powered off now. */
  readonly off = new Set<string>()
  readonly #log: (line: string) => void
  #downing: Promise<string[]> | undefined

  constructor(
    readonly topology: Topology,
    readonly options: BedOptions,
  ) {
    this.net = new Network(options.prefix, options.subnet)
    this.#log = options.log ?? (() => undefined)
    this.settings = {
      subnet: options.subnet,
      topology,
      dir: path.join(os.tmpdir(), `${options.prefix}-${randomBytes(4).toString('hex')}`),
      pgPassword: randomBytes(9).toString('base64url'),
      fleetDir: options.fleetDir ?? root,
      app: options.app ?? path.join(options.fleetDir ?? root, 'chaos', 'app.ts'),
      admin: options.admin ?? { email: 'chaos-admin@example.com', password: 'chaos admin password' },
    }
  }

  host(name: string): HostDef {
    const h = this.topology.hosts.find((x) => x.name === name)
    if (!h) throw new Error(`no host ${name} in the bed`)
    return h
  }

  addr(name: string): string {
    return addrOf(this.settings, this.host(name))
  }

  hostsWith(role: Role): HostDef[] {
    return hostsWith(this.topology, role)
  }

  /** The address clients use: the virtual address with two LBs, else the LB host's. */
  get entry(): string {
    const vip = this.topology.vipOctet
    const lb = this.hostsWith('lb')[0] as HostDef
    return `http://${vip !== undefined && this.hostsWith('lb').length > 1 ? `${this.options.subnet}.${vip}` : addrOf(this.settings, lb)}:${LB_PORT}`
  }

  /** The form of REDIS_URL in deploy/systemd/fleet.env (for the report). */
  redisUrlForm(): string {
    const env = readFileSync(path.join(deployDir, 'systemd', 'fleet.env'), 'utf8')
    return /^REDIS_URL=(.*)$/m.exec(env)?.[1] ?? '(unset)'
  }

  /** The bed's folders in the temp folder, made by earlier runs of this prefix whose owner is gone. */
  static leftoverFolders(prefix: string): string[] {
    return readdirSync(os.tmpdir())
      .filter((f) => f.startsWith(`${prefix}-`))
      .map((f) => path.join(os.tmpdir(), f))
  }

  /** Removes what an earlier bed of this prefix left; refuses when that bed's process still runs. */
  async removeLeftovers(): Promise<string[]> {
    const removed: string[] = []
    for (const dir of Bed.leftoverFolders(this.options.prefix)) {
      const owner = Number(
        existsSync(path.join(dir, 'owner.pid')) ? readFileSync(path.join(dir, 'owner.pid'), 'utf8') : 0,
      )
      if (owner && owner !== process.pid && alive(owner))
        throw new Error(`another bed with prefix ${this.options.prefix} runs (pid ${owner}, ${dir})`)
    }
    removed.push(...(await this.net.removeLeftovers()))
    for (const dir of Bed.leftoverFolders(this.options.prefix)) {
      await fs.rm(dir, { recursive: true, force: true })
      removed.push(`folder ${dir}`)
    }
    return removed
  }

  /** Builds every host and starts everything, in order; throws (having removed it all) when a step fails. */
  async up(): Promise<void> {
    try {
      await this.#up()
    } catch (err) {
      await this.down()
      throw err
    }
  }

  async #up(): Promise<void> {
    const left = await this.removeLeftovers()
    if (left.length) this.#log(`removed leftovers of an earlier run: ${left.join(', ')}`)
    await fs.mkdir(this.settings.dir, { recursive: true })
    await fs.chmod(this.settings.dir, 0o755) // PostgreSQL runs as postgres and must reach its folder
    await fs.writeFile(path.join(this.settings.dir, 'owner.pid'), String(process.pid))
    const tools = await ensureTools({ keepalived: this.hostsWith('lb').length > 1 })
    await this.net.create()
    for (const h of this.topology.hosts) {
      await this.net.addHost(h.name, addrOf(this.settings, h))
      this.services.set(h.name, await servicesOf(this.settings, h, tools, this.net.ns(h.name)))
    }
    this.#log(
      `${this.topology.hosts.length} hosts on ${this.options.subnet}.0/24 (bridge ${this.net.bridge})`,
    )

    const pgHost = this.hostsWith('postgres')[0] as HostDef
    await initCluster({
      pgBin: tools.pgBin,
      data: path.join(hostFolder(this.settings, pgHost, 'data'), 'postgres'),
      addr: addrOf(this.settings, pgHost),
      subnet: this.options.subnet,
      password: this.settings.pgPassword,
    })
    await this.#startRole('postgres', 'redis-store', 'redis-cache')
    const pgAddr = addrOf(this.settings, pgHost)
    if (
      !(await waitFor(() => createDatabase(pgAddr, this.settings.pgPassword).then(() => true), 30_000, 250))
    )
      throw new Error('PostgreSQL did not accept connections within 30 s')
    if (!(await waitFor(() => this.redisWhole(), 30_000)))
      throw new Error('the Redis primaries and replicas were not in place within 30 s')
    await this.#startRole('sentinel')
    if (this.hostsWith('sentinel').length && !(await waitFor(() => this.sentinelsAgree(), 30_000)))
      throw new Error('the Sentinels did not agree on the primaries within 30 s')
    this.#log('PostgreSQL, Redis and Sentinel up; seeding the catalog')
    await this.#seed()
    await this.#startRole('fleet-web', 'fleet-worker')
    if (!(await waitFor(() => this.fleetReady(), 120_000, 500)))
      throw new Error(`the web servers and workers were not ready within 120 s\n${await this.tails()}`)
    await this.#startRole('fleet-lb', 'keepalived')
    if (!(await waitFor(() => this.whole(), 60_000, 500)))
      throw new Error(`the bed was not whole within 60 s of starting the LBs\n${await this.tails()}`)
    this.#log(`every host up; clients use ${this.entry}`)
  }

  /** Starts the named services on every host (that is on). */
  async #startRole(...names: string[]): Promise<void> {
    for (const [host, list] of this.services)
      if (!this.off.has(host)) for (const s of list) if (names.includes(s.name)) s.start()
  }

  /** `fleet seed --if-empty` once, on the first web host, with that host's environment (a one-off). */
  async #seed(): Promise<void> {
    const h = this.hostsWith('web')[0] as HostDef
    const spec = await fleetStart(this.settings, h, 'web')
    const args = [...spec.args.slice(0, -1), 'seed', '--if-empty']
    const out: string[] = []
    const child = spawn('ip', ['netns', 'exec', this.net.ns(h.name), spec.command, ...args], {
      env: spec.env,
      cwd: spec.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    for (const s of [child.stdout, child.stderr]) s.on('data', (c: Buffer) => out.push(String(c)))
    const code = await new Promise<number | null>((r) => child.once('exit', r))
    if (code !== 0) throw new Error(`fleet seed exited ${code}:\n${out.join('').slice(-4000)}`)
  }

  /** Every web server and worker that is on answers its /readyz. */
  async fleetReady(): Promise<boolean> {
    const checks = [
      ...this.#on('web').map((h) => httpOk(`http://${addrOf(this.settings, h)}:${WEB_PORT}/readyz`)),
      ...this.#on('worker').map((h) => httpOk(`http://${addrOf(this.settings, h)}:${WORKER_PORT}/readyz`)),
    ]
    return (await Promise.all(checks)).every(Boolean)
  }

  #on(role: Role): HostDef[] {
    return this.hostsWith(role).filter((h) => !this.off.has(h.name))
  }

  /** Per Redis role: exactly one primary among the hosts that are on, every other one its replica, linked up. */
  async redisWhole(): Promise<boolean> {
    for (const role of ['store', 'cache'] as const) {
      const port = role === 'store' ? this.topology.storePort : this.topology.cachePort
      const hosts = this.#on(role)
      const infos = await Promise.all(
        hosts.map((h) => redisInfo(addrOf(this.settings, h), port, 'replication')),
      )
      if (infos.some((i) => i === undefined)) return false
      const primaries = infos.filter((i) => i?.get('role') === 'master')
      if (primaries.length !== 1) return false
      if (Number(primaries[0]?.get('connected_slaves')) !== hosts.length - 1) return false
      if (infos.some((i) => i?.get('role') === 'slave' && i.get('master_link_status') !== 'up')) return false
    }
    return true
  }

  /**
   * The primary of each Redis role as every Sentinel that is on names it (undefined: they disagree);
   * `except` leaves out a host's Sentinel (one cut off by a partition still names the old primary).
   */
  async sentinelPrimaries(except?: string): Promise<Record<'store' | 'cache', string> | undefined> {
    const hosts = this.#on('sentinel').filter((h) => h.name !== except)
    const out: Partial<Record<'store' | 'cache', string>> = {}
    for (const role of ['store', 'cache'] as const) {
      const names = await Promise.all(
        hosts.map((h) => sentinelPrimary(addrOf(this.settings, h), `fleet-${role}`)),
      )
      if (names.some((n) => !n || n !== names[0])) return undefined
      out[role] = names[0]
    }
    return out as Record<'store' | 'cache', string>
  }

  async sentinelsAgree(): Promise<boolean> {
    return (await this.sentinelPrimaries()) !== undefined
  }

  /** Every LB that is on routes to every web server that is on. */
  async lbsRouteToAll(): Promise<boolean> {
    const webs = this.#on('web').map((h) => `http://${addrOf(this.settings, h)}:${WEB_PORT}`)
    for (const lb of this.#on('lb')) {
      const eligible = await lbEligible(`http://${addrOf(this.settings, lb)}:${LB_ADMIN_PORT}`)
      if (!eligible || !webs.every((w) => eligible.some((e) => e.startsWith(w)))) return false
    }
    return true
  }

  /**
   * The bed is whole: every host on, every service running, web servers and workers ready, each LB routing to
   * every web server, Redis primaries with all replicas linked, the Sentinels agreeing, the entry answering.
   */
  async whole(): Promise<boolean> {
    if (this.off.size > 0) return false
    for (const list of this.services.values()) if (list.some((s) => s.pid === undefined)) return false
    const checks = await Promise.all([
      this.fleetReady(),
      this.lbsRouteToAll(),
      this.redisWhole(),
      this.hostsWith('sentinel').length ? this.sentinelsAgree() : true,
      httpOk(`${this.entry}/api/categories`),
    ])
    return checks.every(Boolean)
  }

  /** Power-off: the cable out first (peers see silence, as with a dead host, not resets), then SIGKILL of every process in it. */
  async powerOff(name: string): Promise<void> {
    this.off.add(name)
    for (const s of this.services.get(name) ?? []) s.forget()
    await this.net.setLink(name, 'down')
    await killNamespace(this.net.ns(name))
  }

  /** Power-on: the cable in, then every service of the host started again, as at boot. */
  async powerOn(name: string): Promise<void> {
    await this.net.setLink(name, 'up')
    this.off.delete(name)
    for (const s of this.services.get(name) ?? []) s.start()
  }

  /** SIGKILL of one service of a host, not restarted until `startService` (a crash systemd gave up on). */
  killService(host: string, name: string): void {
    const s = this.#service(host, name)
    s.forget()
    if (s.pid) process.kill(s.pid, 'SIGKILL')
  }

  startService(host: string, name: string): void {
    this.#service(host, name).start()
  }

  #service(host: string, name: string): Service {
    const s = this.services.get(host)?.find((x) => x.name === name)
    if (!s) throw new Error(`no service ${name} on ${host}`)
    return s
  }

  /** Partition: the host's cable out for `ms`, then in; its processes run on. */
  async partition(name: string, ms: number): Promise<void> {
    await this.net.setLink(name, 'down')
    await sleep(ms)
    await this.net.setLink(name, 'up')
  }

  /** The last lines of every service's log (for a failed step). */
  async tails(lines = 15): Promise<string> {
    const out: string[] = []
    for (const [host, list] of this.services)
      for (const s of list) {
        const text = await fs.readFile(s.logFile, 'utf8').catch(() => '')
        out.push(
          `== ${host} ${s.name} (pid ${s.pid ?? '-'}, started ${s.starts}x)`,
          ...text.trimEnd().split('\n').slice(-lines),
        )
      }
    return out.join('\n')
  }

  /**
   * Stops everything (SIGTERM to Fleet's processes first, so they deregister; then every namespace's
   * processes SIGKILLed), removes namespaces, links and the bed's folder (kept with HOSTS_KEEP=1).
   */
  down(): Promise<string[]> {
    // Once: a signal's teardown and a failed step's may both ask for it.
    this.#downing ??= this.#down()
    return this.#downing
  }

  async #down(): Promise<string[]> {
    const order = ['keepalived', 'fleet-lb', 'fleet-web', 'fleet-worker']
    for (const name of order)
      await Promise.all(
        [...this.services.values()]
          .flat()
          .filter((s) => s.name === name)
          .map((s) => s.stop(15_000)),
      )
    for (const list of this.services.values()) for (const s of list) s.forget()
    for (const h of this.topology.hosts) await killNamespace(this.net.ns(h.name)).catch(() => 0)
    const removed = await this.net.destroy()
    if (process.env.HOSTS_KEEP === '1') this.#log(`bed folder kept: ${this.settings.dir}`)
    else await fs.rm(this.settings.dir, { recursive: true, force: true })
    return removed
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
