/**
 * The `haproxy` engine: HAProxy carries the traffic, Fleet's control plane drives it. Membership comes
 * from the same discovery as the Node engine (registry or fixed URLs) into the same UpstreamSet; a sync
 * loop (sync.ts) mirrors that set into HAProxy through its runtime API (add, drain, remove servers: no
 * reload) and reads HAProxy's view back (health, requests in flight, counts), so /status, /metrics and the
 * dashboard read one model whatever the engine. HAProxy runs as a child in master-worker mode and dies
 * with this process (parent-death signal); `reload()` rewrites its config and reloads it without dropping
 * a connection (the listeners pass to the new worker).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { ConfigMissingError } from '../../config/errors.js'
import { portTaken } from '../../errors.js'
import type { Logger } from '../../log.js'
import { portOf, startAdminServer } from '../admin.js'
import { createDiscovery, createUpstreamSet, type StartOptions, statusSource } from '../control-plane.js'
import type { LoadBalancer } from '../index.js'
import { LbMetrics } from '../metrics.js'
import { readTlsFiles } from '../tls-files.js'
import { haproxyConfig, parserErrorFiles, serverOf } from './config.js'
import { RuntimeApi } from './runtime.js'
import { Sync } from './sync.js'

/** The HAProxy engine's load balancer; `reload()` applies a rewritten config without dropping connections. */
export interface HaproxyLoadBalancer extends LoadBalancer {
  readonly engine: 'haproxy'
  reload(): Promise<void>
}

export async function startHaproxyEngine(options: StartOptions): Promise<HaproxyLoadBalancer> {
  const logger = options.logger.child({ component: 'lb', engine: 'haproxy' })
  const now = options.now ?? Date.now
  let closing = false
  const metrics = new LbMetrics(() => upstreams, now)
  // A change of membership reaches HAProxy at once, not at the next tick.
  let sync: Sync | undefined
  // HAProxy has no panic mode (with every server down it answers 503): the model's is off.
  const upstreams = createUpstreamSet(
    { ...options, panicThreshold: 0 },
    logger,
    metrics,
    now,
    () => void sync?.run(),
  )
  // HAProxy checks health itself: discovery's first check of a new upstream is a no-op here.
  const discovery = createDiscovery(options, upstreams, { check: async () => {} }, logger)
  await discovery.start()

  removeOrphanDirs()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX))
  fs.writeFileSync(path.join(dir, 'owner'), String(process.pid))
  const configPath = path.join(dir, 'haproxy.cfg')
  const port = options.port === 0 ? await freeLoopbackPort(options.host) : options.port
  const paths = {
    adminSocket: path.join(dir, 'admin.sock'),
    errorDir: dir,
    exporterPort: await freeLoopbackPort(),
    tlsPem: options.tls ? path.join(dir, 'tls.pem') : undefined,
  }
  // HAProxy reads the certificate, its chain and the key from one file, kept in the engine's own folder.
  const tlsPem = (): string => {
    const { cert, key } = readTlsFiles(options.tls as { certFile: string; keyFile: string })
    return `${cert.toString('utf8').trim()}\n${key.toString('utf8').trim()}\n`
  }
  if (paths.tlsPem) fs.writeFileSync(paths.tlsPem, tlsPem(), { mode: 0o600 })
  for (const [file, text] of Object.entries(parserErrorFiles())) fs.writeFileSync(path.join(dir, file), text)
  const engineOptions = { ...options, port }
  // Only servers that may take traffic: HAProxy starts a configured server as up, so a starting one is
  // left to the sync, which adds it down until its checks pass.
  const writeConfig = (): void =>
    fs.writeFileSync(
      configPath,
      haproxyConfig(
        engineOptions,
        paths,
        upstreams
          .all()
          .filter((u) => u.healthy && !u.draining)
          .map(serverOf),
      ),
    )
  writeConfig()
  const api = new RuntimeApi(paths.adminSocket)
  const master = new RuntimeApi(path.join(dir, 'master.sock'))
  const child = spawnHaproxy(options.haproxyPath ?? 'haproxy', configPath, master.socketPath, logger)
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  try {
    await untilReady(api, exited, child, port, options.host)
  } catch (err) {
    killGroup(child)
    fs.rmSync(dir, { recursive: true, force: true })
    throw err
  }
  sync = new Sync(api, upstreams, metrics, engineOptions, logger)
  await sync.run()
  sync.start()
  const synced = sync

  const admin = await startAdminServer(
    statusSource(
      options,
      { upstreams, metrics, discovery, now, closing: () => closing },
      { engine: 'haproxy', moreMetrics: () => scrape(paths.exporterPort) },
    ),
    options.adminHost,
    options.adminPort,
  ).catch(async (err: Error) => {
    synced.stop()
    killGroup(child)
    await exited
    fs.rmSync(dir, { recursive: true, force: true })
    throw err
  })
  const adminPort = portOf(admin)
  logger.info(
    { port, adminPort, strategy: options.strategy, upstreams: options.upstreams, pid: child.pid },
    'load balancer listening (haproxy engine)',
  )
  let closed: Promise<void> | undefined
  return {
    engine: 'haproxy',
    port,
    adminPort,
    upstreams,
    async reloadCertificate() {
      if (!paths.tlsPem) {
        throw new ConfigMissingError('FLEET_LB_TLS_CERT', 'there is no certificate to reload: TLS is off')
      }
      // HAProxy's runtime API swaps the certificate in one transaction: new handshakes use it, no reload.
      const pem = tlsPem()
      fs.writeFileSync(paths.tlsPem, pem, { mode: 0o600 })
      const set = await api.send(`set ssl cert ${paths.tlsPem} <<\n${pem}\n`)
      if (!/Transaction (created|updated)/i.test(set)) throw new Error(`haproxy: set ssl cert: ${set}`)
      const commit = await api.send(`commit ssl cert ${paths.tlsPem}`)
      if (!/Success/i.test(commit)) throw new Error(`haproxy: commit ssl cert: ${commit}`)
      logger.info({ cert: options.tls?.certFile }, 'TLS certificate reloaded')
    },
    async reload() {
      writeConfig()
      // The master CLI lists the current worker; a reload replaces it (the old one finishes its connections).
      const worker = async () => /# workers\n(\d+)/.exec(await master.send('show proc').catch(() => ''))?.[1]
      const old = await worker()
      child.kill('SIGUSR2')
      const deadline = Date.now() + 30_000
      for (;;) {
        const now = await worker()
        if (now && now !== old) break
        if (Date.now() > deadline)
          throw new Error('haproxy: the reload did not bring a new worker within 30 s')
        await new Promise((r) => setTimeout(r, 50))
      }
      // The new worker's runtime API answers once it runs.
      await untilReady(api, exited, child, port, options.host)
      synced.reloaded()
      await synced.run()
      logger.info('haproxy reloaded')
    },
    close() {
      closed ??= (async () => {
        closing = true
        discovery.stop()
        synced.stop()
        // Soft stop: HAProxy stops listening, finishes the requests in flight (hard-stop-after bounds it).
        child.kill('SIGUSR1')
        const timer = setTimeout(() => killGroup(child), options.shutdownTimeoutMs + 2_000)
        await exited
        clearTimeout(timer)
        killGroup(child) // a worker still finishing after its master is gone
        await upstreams.close(true)
        const adminClosed = new Promise<void>((r) => admin.close(() => r()))
        admin.closeAllConnections()
        await adminClosed
        fs.rmSync(dir, { recursive: true, force: true })
        logger.info('load balancer closed')
      })()
      return closed
    },
  }
}

const DIR_PREFIX = 'fleet-haproxy-'

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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Kills HAProxy's whole process group (master and workers); nothing when it is already gone. */
function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

/** HAProxy in master-worker mode, in the foreground, killed if this process dies (setpriv's parent-death signal). */
function spawnHaproxy(
  program: string,
  configPath: string,
  masterSocket: string,
  logger: Logger,
): ChildProcess {
  const args = ['-W', '-db', '-S', masterSocket, '-f', configPath]
  const setpriv = fs.existsSync('/usr/bin/setpriv')
  // Its own process group, so that close() can end a worker that outlives the master.
  const how = { stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'], detached: true }
  const child = setpriv
    ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', program, ...args], how)
    : spawn(program, args, how)
  const lines: string[] = []
  const onData = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue
      lines.push(line)
      if (lines.length > 50) lines.shift()
      logger.info({ haproxy: line.trim() }, 'haproxy')
    }
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  ;(child as ChildProcess & { lastLines?: string[] }).lastLines = lines
  return child
}

async function untilReady(
  api: RuntimeApi,
  exited: Promise<number | null>,
  child: ChildProcess,
  port: number,
  host: string,
): Promise<void> {
  let gone: number | null | undefined
  void exited.then((code) => {
    gone = code
  })
  const deadline = Date.now() + 15_000
  for (;;) {
    if (gone !== undefined) {
      const said = ((child as ChildProcess & { lastLines?: string[] }).lastLines ?? []).join('\n')
      if (/cannot bind socket|Address already in use/i.test(said)) {
        throw portTaken({ code: 'EADDRINUSE' }, port, 'FLEET_PORT', `the load balancer on ${host}`)
      }
      throw new Error(`haproxy exited (${gone}) before it was ready:\n${said}`)
    }
    const info = await api.send('show info', 1_000).catch(() => '')
    if (info.includes('Pid:')) return
    if (Date.now() > deadline) throw new Error('haproxy was not ready within 15 s')
    await new Promise((r) => setTimeout(r, 50))
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
