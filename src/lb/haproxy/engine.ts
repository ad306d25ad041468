/**
 * The `haproxy` engine: HAProxy carries the traffic, Fleet's control plane drives it. Membership comes
 * from the same discovery as the Node engine (registry or fixed URLs) into the same UpstreamSet; a sync
 * loop (sync.ts) mirrors that set into HAProxy through its runtime API (add, drain, remove servers: no
 * reload) and reads HAProxy's view back (health, requests in flight, counts), so /status, /metrics and the
 * dashboard read one model whatever the engine. HAProxy runs as a child in master-worker mode and dies
 * with this process (parent-death signal); `reload()` rewrites its config and reloads it without dropping
 * a connection (the listeners pass to the new worker).
 */
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { ConfigMissingError } from '../../config/errors.js'
import type { Logger } from '../../log.js'
import { portOf, startAdminServer } from '../admin.js'
import { createDiscovery, createUpstreamSet, type StartOptions, statusSource } from '../control-plane.js'
import type { Discovery } from '../discovery.js'
import type { LoadBalancer } from '../index.js'
import { LbMetrics } from '../metrics.js'
import type { LoadBalancerOptions } from '../options.js'
import { readTlsFiles } from '../tls-files.js'
import type { UpstreamSet } from '../upstream-set.js'
import { type HaproxyPaths, haproxyConfig, parserErrorFiles, serverOf } from './config.js'
import { type Haproxy, killHaproxy, reloadHaproxy, startHaproxy, stopHaproxy } from './process.js'
import { Sync } from './sync.js'

/** The HAProxy engine's load balancer; `reload()` applies a rewritten config without dropping connections. */
export interface HaproxyLoadBalancer extends LoadBalancer {
  readonly engine: 'haproxy'
  reload(): Promise<void>
}

/** Starts the engine; resolves once HAProxy answers, the first sync ran and the admin port listens. */
export async function startHaproxyEngine(options: StartOptions): Promise<HaproxyLoadBalancer> {
  const logger = options.logger.child({ component: 'lb', engine: 'haproxy' })
  // A change of membership reaches HAProxy at once, not at the next tick.
  let sync: Sync | undefined
  const plane = await startControlPlane(options, logger, () => void sync?.run())
  const { engineOptions, folder, haproxy } = await launchHaproxy(options, plane.upstreams, logger).catch(
    async (err: Error) => {
      // Discovery's timers and registry reads would otherwise outlive the failed start.
      plane.discovery.stop()
      await plane.upstreams.close(true)
      throw err
    },
  )
  const synced = new Sync(haproxy.api, plane.upstreams, plane.metrics, engineOptions, logger)
  sync = synced
  await synced.run()
  synced.start()
  const life = { closing: false }
  const admin = await startEngineAdmin(options, plane, life, folder.paths.exporterPort).catch(
    async (err: Error) => {
      synced.stop()
      plane.discovery.stop()
      await killHaproxy(haproxy)
      await plane.upstreams.close(true)
      removeFolder(folder)
      throw err
    },
  )
  const engine = new HaproxyEngine({
    options: engineOptions,
    logger,
    life,
    folder,
    haproxy,
    sync: synced,
    upstreams: plane.upstreams,
    discovery: plane.discovery,
    admin,
  })
  logger.info(
    {
      port: engine.port,
      adminPort: engine.adminPort,
      strategy: options.strategy,
      upstreams: options.upstreams,
      pid: haproxy.child.pid,
    },
    'load balancer listening (haproxy engine)',
  )
  return engine
}

/** The model every engine shares: the upstream set, its metrics, and where membership comes from. */
interface ControlPlane {
  now: () => number
  metrics: LbMetrics
  upstreams: UpstreamSet
  discovery: Discovery
}

/** The control plane as this engine needs it, with discovery started (`onMembership`: on every change). */
async function startControlPlane(
  options: StartOptions,
  logger: Logger,
  onMembership: () => void,
): Promise<ControlPlane> {
  const now = options.now ?? Date.now
  const metrics = new LbMetrics(() => upstreams, now)
  // HAProxy has no panic mode (with every server down it answers 503): the model's is off.
  const upstreams = createUpstreamSet({ ...options, panicThreshold: 0 }, logger, metrics, now, onMembership)
  // HAProxy checks health itself: discovery's first check of a new upstream is a no-op here.
  const discovery = createDiscovery(options, upstreams, { check: async () => {} }, logger)
  await discovery.start()
  return { now, metrics, upstreams, discovery }
}

/**
 * Picks the ports, writes the engine's folder and config, and starts HAProxy on them; if HAProxy does not
 * start, the folder is removed. `engineOptions`: the options with the public port resolved.
 */
async function launchHaproxy(
  options: StartOptions,
  upstreams: UpstreamSet,
  logger: Logger,
): Promise<{ engineOptions: StartOptions; folder: EngineFolder; haproxy: Haproxy }> {
  const engineOptions = {
    ...options,
    port: options.port === 0 ? await freeLoopbackPort(options.host) : options.port,
  }
  const folder = createEngineFolder(options.tls, await freeLoopbackPort())
  writeConfig(folder, engineOptions, upstreams)
  const program = options.haproxyPath ?? 'haproxy'
  const files = { ...folder, adminSocket: folder.paths.adminSocket }
  const haproxy = await startHaproxy(program, files, engineOptions, logger).catch((err: Error) => {
    removeFolder(folder)
    throw err
  })
  return { engineOptions, folder, haproxy }
}

/** The admin port: /status and /metrics from the control plane, then HAProxy's own exporter's figures. */
function startEngineAdmin(
  options: StartOptions,
  plane: ControlPlane,
  life: { closing: boolean },
  exporterPort: number,
): Promise<http.Server> {
  return startAdminServer(
    statusSource(
      options,
      { ...plane, closing: () => life.closing },
      { engine: 'haproxy', moreMetrics: () => scrape(exporterPort) },
    ),
    options.adminHost,
    options.adminPort,
  )
}

/** What a started engine holds: its reload, certificate reload and close work on these. */
interface EngineParts {
  /** The options with the public port resolved: what the config is written from. */
  options: StartOptions
  logger: Logger
  /** `closing` is shown in /status. */
  life: { closing: boolean }
  folder: EngineFolder
  haproxy: Haproxy
  sync: Sync
  upstreams: UpstreamSet
  discovery: Discovery
  admin: http.Server
}

/** A running HAProxy engine. */
class HaproxyEngine implements HaproxyLoadBalancer {
  readonly engine = 'haproxy'
  readonly port: number
  readonly adminPort: number
  readonly upstreams: UpstreamSet
  readonly #parts: EngineParts
  #closed: Promise<void> | undefined

  constructor(parts: EngineParts) {
    this.#parts = parts
    this.port = parts.options.port
    this.adminPort = portOf(parts.admin)
    this.upstreams = parts.upstreams
  }

  /** Reads the certificate and key again and swaps them in HAProxy: new handshakes use them, no reload. */
  async reloadCertificate(): Promise<void> {
    const { options, folder, haproxy, logger } = this.#parts
    const file = folder.paths.tlsPem
    if (!file || !options.tls) {
      throw new ConfigMissingError('FLEET_LB_TLS_CERT', 'there is no certificate to reload: TLS is off')
    }
    // HAProxy's runtime API swaps the certificate in one transaction: new handshakes use it, no reload.
    const pem = writeTlsPem(file, options.tls)
    const set = await haproxy.api.send(`set ssl cert ${file} <<\n${pem}\n`)
    if (!/Transaction (created|updated)/i.test(set)) throw new Error(`haproxy: set ssl cert: ${set}`)
    const commit = await haproxy.api.send(`commit ssl cert ${file}`)
    if (!/Success/i.test(commit)) throw new Error(`haproxy: commit ssl cert: ${commit}`)
    logger.info({ cert: options.tls.certFile }, 'TLS certificate reloaded')
  }

  /** Rewrites the config with the current members and reloads HAProxy without dropping a connection. */
  async reload(): Promise<void> {
    const { options, folder, haproxy, sync, upstreams, logger } = this.#parts
    writeConfig(folder, options, upstreams)
    await reloadHaproxy(haproxy, options)
    sync.reloaded()
    await sync.run()
    logger.info('haproxy reloaded')
  }

  /**
   * Stops discovery and the sync, stops HAProxy softly (killed after the shutdown timeout and 2 s), closes
   * the pools and the admin port, then removes the folder; once, whoever calls.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close()
    return this.#closed
  }

  async #close(): Promise<void> {
    const { options, life, discovery, sync, haproxy, upstreams, admin, folder, logger } = this.#parts
    life.closing = true
    discovery.stop()
    sync.stop()
    await stopHaproxy(haproxy, options.shutdownTimeoutMs + 2_000)
    await upstreams.close(true)
    const adminClosed = new Promise<void>((r) => admin.close(() => r()))
    admin.closeAllConnections()
    await adminClosed
    removeFolder(folder)
    logger.info('load balancer closed')
  }
}

const DIR_PREFIX = 'fleet-haproxy-'

/** The engine's own folder: HAProxy's config, sockets, error files and certificate, and the owner's pid. */
interface EngineFolder {
  dir: string
  configPath: string
  masterSocket: string
  paths: HaproxyPaths
}

/** Creates the engine's folder (orphans removed first) with its owner file, certificate and error files. */
function createEngineFolder(tls: LoadBalancerOptions['tls'], exporterPort: number): EngineFolder {
  removeOrphanDirs()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX))
  fs.writeFileSync(path.join(dir, 'owner'), String(process.pid))
  const paths: HaproxyPaths = {
    adminSocket: path.join(dir, 'admin.sock'),
    errorDir: dir,
    exporterPort,
    tlsPem: tls ? path.join(dir, 'tls.pem') : undefined,
  }
  try {
    if (paths.tlsPem && tls) writeTlsPem(paths.tlsPem, tls)
    for (const [file, text] of Object.entries(parserErrorFiles()))
      fs.writeFileSync(path.join(dir, file), text)
  } catch (err) {
    // A certificate that cannot be read: nothing is left behind for a later start to clear.
    fs.rmSync(dir, { recursive: true, force: true })
    throw err
  }
  return {
    dir,
    configPath: path.join(dir, 'haproxy.cfg'),
    masterSocket: path.join(dir, 'master.sock'),
    paths,
  }
}

/** Removes the engine's folder and all in it. */
function removeFolder(folder: EngineFolder): void {
  fs.rmSync(folder.dir, { recursive: true, force: true })
}

/**
 * Writes the certificate, its chain and the key to `file` (HAProxy reads them from one file, kept in the
 * engine's own folder, readable by its owner only); returns what it wrote.
 */
function writeTlsPem(file: string, tls: { certFile: string; keyFile: string }): string {
  const { cert, key } = readTlsFiles(tls)
  const pem = `${cert.toString('utf8').trim()}\n${key.toString('utf8').trim()}\n`
  fs.writeFileSync(file, pem, { mode: 0o600 })
  return pem
}

/**
 * Writes HAProxy's config with the servers that may take traffic: HAProxy starts a configured server as up,
 * so a starting one is left to the sync, which adds it down until its checks pass.
 */
function writeConfig(folder: EngineFolder, options: LoadBalancerOptions, upstreams: UpstreamSet): void {
  const servers = upstreams
    .all()
    .filter((u) => u.healthy && !u.draining)
    .map(serverOf)
  fs.writeFileSync(folder.configPath, haproxyConfig(options, folder.paths, servers))
}

/**
 * Removes the folders of engines whose process is gone (killed before close() ran): each names its owner's
 * pid; its HAProxy died with it (parent-death signal).
 */
function removeOrphanDirs(): void {
  for (const name of fs.readdirSync(os.tmpdir())) {
    if (!name.startsWith(DIR_PREFIX)) continue
    const dir = path.join(os.tmpdir(), name)
    try {
      const owner = Number(fs.readFileSync(path.join(dir, 'owner'), 'utf8'))
      if (owner > 0 && alive(owner)) continue
      fs.rmSync(dir, { recursive: true, force: true })
    } catch {
      // no owner file yet (an engine starting this instant) or already gone
    }
  }
}

/** Whether a process with this pid exists (EPERM: it does, owned by another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A port free on `host` now (HAProxy cannot report a port the OS picked). */
async function freeLoopbackPort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, resolve)
  })
  const port = (server.address() as net.AddressInfo).port
  await new Promise((r) => server.close(r))
  return port
}

/** HAProxy's own Prometheus text. */
function scrape(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', timeout: 2_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
      res.on('error', () => resolve(''))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(''))
  })
}
