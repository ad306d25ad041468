/**
 * `fleet up`: the whole stack on one machine. Starts (or takes by URL) PostgreSQL and the two Redis servers,
 * applies migrations, seeds an empty catalog, starts the LB, the web servers and the workers under a
 * supervisor, serves the control socket, and on Ctrl-C / SIGTERM stops everything in order: LB, web
 * servers (they drain), workers, Redis, PostgreSQL. A second signal forces.
 */
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FleetApp } from '../app/define.js'
import { appMigrations } from '../app/manifest.js'
import { type Config, configToEnv } from '../config/index.js'
import { Database } from '../db/database.js'
import { migrate } from '../db/migrate.js'
import { createPool } from '../db/pool.js'
import { ControlServer } from './control.js'
import { ControlRequestError, PortInUseError } from './errors.js'
import { recordPids, stopLeftovers } from './leftovers.js'
import { LogAppender } from './log-file.js'
import { Progress } from './progress.js'
import { type Reaper, startReaper } from './reaper.js'
import { childEnv, cliPath, stackChildren } from './roles.js'
import {
  assertPortFree,
  type PortNeed,
  portOrFree,
  type Service,
  startStores,
  stopLeftoverStores,
} from './services.js'
import { settleInLb } from './settle.js'
import { formatDuration, rssOf, type StatusReport, type StatusRow } from './status.js'
import { Supervisor } from './supervisor.js'
import { echoLine, StatusView } from './view.js'
import { type Watcher, watchSources } from './watch.js'
import { WorkerDeaths } from './worker-deaths.js'

/** The application the stack runs: its declaration and the module children load it from (FLEET_APP). */
export interface StackApp {
  app: FleetApp
  url: URL
}

export interface StackOptions {
  /**
   * `fleet dev`: this folder (the app's) is watched, and a saved source file restarts the web servers and
   * workers, which load the app anew; the stores and the load balancer keep running.
   */
  watch?: string
}

/** Extra time a child gets after FLEET_SHUTDOWN_TIMEOUT (its own drain bound) before SIGKILL. */
const STOP_MARGIN_MS = 5_000
/** How long the first start of every child may take before `fleet up` reports the laggards. */
const READY_TIMEOUT_MS = 120_000

export class Stack {
  readonly #config: Config
  readonly #app: StackApp
  readonly #out: NodeJS.WriteStream
  readonly #dataDir: string
  readonly #startedAt = Date.now()
  readonly #services: Service[] = []
  readonly #view: StatusView
  #supervisor: Supervisor | undefined
  #control: ControlServer | undefined
  #reaper: Reaper | undefined
  #workerDeaths: WorkerDeaths | undefined
  #phase: StatusReport['phase'] = 'starting'
  #urls: StatusReport['urls'] = { app: '' }
  #stopping: Promise<void> | undefined
  #forced = false
  #pidWrites: Promise<void> = Promise.resolve()
  /** The stores' URLs once they run (in the status report, for the operator commands). */
  #stores: StatusReport['stores']
  /** Set once the control socket is ours: only then are the folder's pid records and socket ours to remove. */
  #ownsDataDir = false
  /** Set once the shutdown went through the services: one that finishes starting later stops at once. */
  #stopsDone = false
  readonly #lateStops: Promise<void>[] = []
  /** Node warnings already shown (each is shown once for the whole stack, not once per process). */
  readonly #warned = new Set<string>()
  readonly #serviceLogs = new Map<string, LogAppender>()
  readonly #options: StackOptions
  #watcher: Watcher | undefined
  /** Files saved while a reload runs: the next reload takes them. */
  #saved: string[] | undefined
  #reloading = false
  #onStopRequested: () => void = () => {}
  readonly #stopRequested = new Promise<void>((resolve) => {
    this.#onStopRequested = resolve
  })

  constructor(
    config: Config,
    app: StackApp,
    out: NodeJS.WriteStream = process.stdout,
    options: StackOptions = {},
  ) {
    this.#config = config
    this.#app = app
    this.#options = options
    this.#out = out
    this.#dataDir = path.resolve(config.dataDir)
    this.#view = new StatusView(out, () => this.report())
  }

  get stopping(): boolean {
    return this.#stopping !== undefined
  }

  #say(line: string): void {
    this.#view.message(line)
  }

  /** Starts everything; resolves once every child was started and the first round of readiness is over. */
  async start(): Promise<void> {
    const c = this.#config
    const dir = this.#dataDir
    await fs.mkdir(path.join(dir, 'logs'), { recursive: true })
    this.#control = new ControlServer(path.join(dir, 'fleet.sock'), {
      status: () => this.report(),
      restart: (target, onProgress) => {
        if (!this.#supervisor || this.#phase !== 'running')
          return Promise.reject(
            new ControlRequestError(`the stack is ${this.#phase}; try again when it runs`),
          )
        return this.#supervisor.restart(target, (p) => {
          this.#say(`restart: ${p.message}`)
          onProgress(p)
        })
      },
    })
    await this.#control.listen(dir) // refuses when another fleet up runs on this folder
    this.#ownsDataDir = true
    const leftovers = await stopLeftovers(path.join(dir, 'children.json'), cliPath)
    if (leftovers.length > 0)
      this.#say(`stopped processes left by an earlier fleet up: ${leftovers.join(', ')}`)
    await stopLeftoverStores(c, dir, (name, line) => {
      if (line.startsWith('stopping')) this.#say(`${name}: ${line}`)
    })
    // From here on, a supervisor that dies outright leaves nothing running: the reaper stops it all.
    this.#reaper = startReaper(dir, { ...process.env, ...configToEnv(c) })

    // Ports: fail fast, naming the setting, before anything starts.
    const lbPort = await portOrFree(c.port)
    const adminPort = await portOrFree(c.lbAdminPort)
    const webPorts: number[] = []
    for (let i = 0; i < c.webCount; i++)
      webPorts.push(c.webBasePort === 0 ? await portOrFree(0) : c.webBasePort + i)
    const workerPorts: number[] = []
    for (let i = 0; i < c.workerCount; i++) workerPorts.push(await portOrFree(0))
    const pgPort = c.databaseUrl ? 0 : await portOrFree(c.pgPort)
    const redisPort = c.redisUrl ? 0 : await portOrFree(c.redisPort)
    const cachePort = c.cacheRedisUrl ? 0 : await portOrFree(c.cacheRedisPort)
    const needs: PortNeed[] = [
      { port: lbPort, host: c.lbHost, setting: 'FLEET_PORT', what: 'the load balancer' },
      { port: adminPort, host: '127.0.0.1', setting: 'FLEET_LB_ADMIN_PORT', what: 'the load balancer admin' },
      ...webPorts.map((port, i) => ({
        port,
        host: c.webHost,
        setting: 'FLEET_WEB_BASE_PORT',
        what: `web server ${i + 1} (base port + ${i})`,
      })),
    ]
    if (pgPort) needs.push({ port: pgPort, host: '127.0.0.1', setting: 'FLEET_PG_PORT', what: 'PostgreSQL' })
    if (redisPort)
      needs.push({ port: redisPort, host: '127.0.0.1', setting: 'FLEET_REDIS_PORT', what: 'Redis (store)' })
    if (cachePort)
      needs.push({
        port: cachePort,
        host: '127.0.0.1',
        setting: 'FLEET_CACHE_REDIS_PORT',
        what: 'Redis (cache)',
      })
    for (const [i, need] of needs.entries()) {
      const other = needs.slice(0, i).find((n) => n.port === need.port)
      if (other)
        throw new PortInUseError(need.port, need.setting, `${need.what}, but ${other.setting} chose it too`)
      await assertPortFree(need)
    }
    const resolved: Config = Object.freeze({
      ...c,
      port: lbPort,
      lbAdminPort: adminPort,
      pgPort,
      redisPort,
      cacheRedisPort: cachePort,
    })

    const serviceLog = (name: string, line: string) => {
      let log = this.#serviceLogs.get(name)
      if (!log) {
        log = new LogAppender(path.join(dir, 'logs', `${name}.log`))
        this.#serviceLogs.set(name, log)
      }
      log.write(line)
    }
    const stores = await startStores(resolved, {
      dataDir: dir,
      say: (l) => this.#say(l),
      onLog: serviceLog,
      stopping: () => this.stopping,
      onStarted: (s) => {
        this.#services.push(s)
        // A stop asked for while this service was starting has already passed it by.
        if (this.#stopsDone) this.#lateStops.push(s.stop(30_000))
      },
    })
    if (this.stopping) return
    this.#stores = {
      databaseUrl: stores.databaseUrl,
      redisUrl: stores.redisUrl,
      cacheRedisUrl: stores.cacheRedisUrl,
    }

    await this.#prepareDatabase(resolved, stores.databaseUrl)
    if (this.stopping) return

    const hostForUrl = c.lbHost === '0.0.0.0' || c.lbHost === '::' ? 'localhost' : c.lbHost
    this.#urls = {
      app: `http://${hostForUrl === '127.0.0.1' ? 'localhost' : hostForUrl}:${lbPort}`,
      admin: `http://127.0.0.1:${adminPort}/status`,
      metrics: `http://127.0.0.1:${adminPort}/metrics`,
      ...(c.dashboard ? { dashboard: `http://127.0.0.1:${adminPort}/dashboard/` } : {}),
    }
    const shutdownMs = c.shutdownTimeout + STOP_MARGIN_MS
    const deaths = new WorkerDeaths({
      redisUrl: stores.redisUrl,
      config: resolved,
      app: this.#app.app,
      say: (l) => this.#say(l),
    })
    this.#workerDeaths = deaths
    const supervisor = new Supervisor({
      stopTimeoutMs: () => shutdownMs,
      readyTimeoutMs: 60_000,
      onState: (snap, previous) => {
        this.#view.stateChanged(snap, previous)
        if (snap.state === 'starting' || snap.state === 'stopped') void this.#recordPids()
        if (snap.role === 'worker' && snap.state === 'crashed' && !this.stopping) void deaths.died(snap.name)
      },
      // Only a web server is in the LB's rotation: a worker (or the LB) has nothing to settle into, and
      // waiting for the LB to list it would cost the settle's whole bound.
      settle: async (snap) => (snap.role === 'web' ? settleInLb(adminPort, snap) : undefined),
    })
    this.#supervisor = supervisor
    const specs = stackChildren({
      env: {
        ...childEnv(resolved, configToEnv(resolved, this.#app.app.settings), stores, { lbPort, adminPort }),
        FLEET_APP: fileURLToPath(this.#app.url),
      },
      lbPort,
      lbProbeHost: c.lbHost === '0.0.0.0' || c.lbHost === '::' ? '127.0.0.1' : c.lbHost,
      adminPort,
      webPorts,
      workerPorts,
      logFile: (name) => path.join(dir, 'logs', `${name}.log`),
      backoff: { initialMs: 250, maxMs: c.restartBackoffMax, resetAfterMs: 30_000 },
      onLine: (name, line) => {
        const echo = echoLine(name, line, this.#warned)
        if (echo) this.#say(echo)
      },
    })
    for (const spec of specs) supervisor.add(spec)
    this.#say(`starting ${specs.map((s) => s.name).join(', ')} (logs in ${path.join(dir, 'logs')})...`)
    supervisor.startAll()
    const pending = await supervisor.waitAllReady(READY_TIMEOUT_MS, () => this.stopping)
    if (this.stopping) return
    this.#phase = 'running'
    const took = formatDuration(Date.now() - this.#startedAt)
    if (pending.length > 0)
      this.#say(
        `not ready after ${formatDuration(READY_TIMEOUT_MS)}: ${pending.join(', ')} (see ${path.join(dir, 'logs')}/<name>.log); still trying`,
      )
    this.#say(
      [
        '',
        `fleet is up in ${took}:`,
        `  app       ${this.#urls.app}`,
        `  lb admin  ${this.#urls.admin}`,
        `  metrics   ${this.#urls.metrics} (each web server: http://127.0.0.1:<port>/metrics)`,
        ...(this.#urls.dashboard ? [`  dashboard ${this.#urls.dashboard}`] : []),
        `  manage    ${fleetCommand()} status | ${fleetCommand()} restart web | Ctrl-C stops everything (twice forces)`,
        ...(this.#options.watch
          ? [`  dev       saving a source file in ${this.#options.watch} reloads the web servers and workers`]
          : []),
      ].join('\n'),
    )
    this.#view.start()
    if (this.#options.watch)
      this.#watcher = watchSources(this.#options.watch, (files) => void this.#reload(files))
  }

  /**
   * `fleet dev`: restarts the web servers, then the workers (a rolling restart, as `fleet restart`), so
   * they load the saved code. Saves during a reload make one more reload after it.
   */
  async #reload(files: string[]): Promise<void> {
    if (this.#reloading) {
      this.#saved = [...new Set([...(this.#saved ?? []), ...files])]
      return
    }
    const supervisor = this.#supervisor
    if (!supervisor || this.stopping) return
    this.#reloading = true
    try {
      for (let batch: string[] | undefined = files; batch && !this.stopping; batch = this.#takeSaved()) {
        const t0 = Date.now()
        const shown =
          batch.length > 3 ? `${batch.slice(0, 3).join(', ')} and ${batch.length - 3} more` : batch.join(', ')
        this.#say(`dev: ${shown} saved: reloading`)
        try {
          for (const role of ['web', 'worker'])
            if (supervisor.select(role).length > 0) {
              await supervisor.restart(role)
              if (role === 'web')
                this.#say(`dev: web servers answer with the new code (${Date.now() - t0} ms)`)
            }
          this.#say(`dev: reloaded in ${Date.now() - t0} ms`)
        } catch (err) {
          this.#say(
            `dev: reload failed: ${(err as Error).message}; see ${path.join(this.#dataDir, 'logs')}, fix and save again`,
          )
        }
      }
    } finally {
      this.#reloading = false
    }
  }

  #takeSaved(): string[] | undefined {
    const saved = this.#saved
    this.#saved = undefined
    return saved
  }

  /** Migrations once under their lock; then the app's seed when FLEET_SEED is on and the app says it is empty. */
  async #prepareDatabase(config: Config, databaseUrl: string): Promise<void> {
    const { app } = this.#app
    const pool = createPool({ ...config, databaseUrl }, { applicationName: 'fleet-up' })
    try {
      const m = await migrate(pool, config.dbSchema, { migrations: appMigrations(app) })
      this.#say(
        `migrations: ${m.applied.length} applied, ${m.skipped.length} already in place (app ${app.name})`,
      )
      if (!config.seedOnStart || !app.seed || this.stopping) return
      const db = new Database(pool)
      if (!(await app.seed.isEmpty(db))) return
      this.#say(`seeding app ${app.name} (its data is empty; FLEET_SEED=false skips this)...`)
      const progress = new Progress(this.#out, 'seed')
      const summary = await app.seed.run(db, config, (done, total, phase) =>
        progress.update(done, total, phase),
      )
      progress.done()
      this.#say(summary)
    } finally {
      await pool.end()
    }
  }

  /** Records the children's pids; writes are chained so the last state always wins. */
  #recordPids(): Promise<void> {
    this.#pidWrites = this.#pidWrites.then(async () => {
      const records = (this.#supervisor?.children ?? [])
        .filter((ch) => ch.pid !== undefined)
        .map((ch) => ({ name: ch.name, pid: ch.pid as number }))
      await recordPids(path.join(this.#dataDir, 'children.json'), records).catch(() => {})
    })
    return this.#pidWrites
  }

  /** The status of every process, for the view and the control socket. */
  report(): StatusReport {
    const rows: StatusRow[] = [
      {
        role: 'up',
        name: 'supervisor',
        pid: process.pid,
        port: undefined,
        state: this.#phase === 'stopping' ? 'stopping' : this.#phase === 'running' ? 'ready' : 'starting',
        restarts: 0,
        startedAt: this.#startedAt,
        lastExit: undefined,
        nextStartAt: undefined,
        rss: rssOf(process.pid),
      },
      ...(this.#supervisor?.snapshots() ?? []).map((s) => ({ ...s, rss: rssOf(s.pid) })),
    ]
    const order = ['postgres', 'redis-store', 'redis-cache']
    const services = [...this.#services].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name))
    for (const s of services) {
      // Each store is kept running by its StoreKeeper (restarted with backoff when it exits on its own).
      const pid = s.pid()
      const up = pid !== undefined && running(pid)
      const state = this.#stopsDone ? 'stopped' : s.state
      rows.push({
        role: s.role,
        name: s.name,
        pid: up ? pid : undefined,
        port: s.port,
        state,
        restarts: s.restarts,
        startedAt: up ? s.startedAt : undefined,
        lastExit: s.lastExit,
        nextStartAt: s.nextStartAt,
        rss: rssOf(pid),
      })
    }
    return {
      pid: process.pid,
      startedAt: this.#startedAt,
      dataDir: this.#dataDir,
      urls: this.#urls,
      phase: this.#phase,
      rows,
      ...(this.#stores ? { stores: this.#stores } : {}),
    }
  }

  /** Resolves once the services that finished starting after the shutdown passed are stopped too. */
  async lateStops(): Promise<void> {
    await Promise.all(this.#lateStops)
  }

  /** Resolves when a shutdown was asked for. */
  get stopRequested(): Promise<void> {
    return this.#stopRequested
  }

  /** Stops everything in order (idempotent); resolves when all is down. */
  shutdown(): Promise<void> {
    this.#onStopRequested()
    this.#stopping ??= this.#shutdown()
    return this.#stopping
  }

  /** True after a forced stop (the exit code says it was not clean). */
  get forced(): boolean {
    return this.#forced
  }

  /** The second Ctrl-C: SIGKILL every child now, stop the stores without waiting long. */
  force(): void {
    this.#forced = true
    void this.#supervisor?.kill()
    for (const s of this.#services) void s.stop(2_000)
  }

  async #shutdown(): Promise<void> {
    this.#phase = 'stopping'
    this.#watcher?.close()
    this.#view.stop()
    const names: Record<string, string> = {
      lb: 'load balancer (stops accepting)',
      web: 'web servers (draining)',
      worker: 'workers (finishing their jobs)',
    }
    await this.#supervisor?.stop(['lb', 'web', 'worker'], (role) =>
      this.#say(`stopping ${names[role] ?? role}...`),
    )
    const services = [...this.#services].reverse()
    this.#stopsDone = true
    for (const s of services) {
      this.#say(`stopping ${s.name}...`)
      await s.stop(this.#forced ? 2_000 : 30_000)
    }
    this.#workerDeaths?.close()
    await Promise.all([...this.#serviceLogs.values()].map((log) => log.flush()))
    await this.#pidWrites
    // A start refused because another fleet up runs here touches nothing of that stack's.
    if (this.#ownsDataDir) await fs.rm(path.join(this.#dataDir, 'children.json'), { force: true })
    await this.#control?.close()
    this.#reaper?.release()
    // A start refused before it owned the folder started nothing: its error says all there is to say.
    if (this.#ownsDataDir)
      this.#say(
        `stopped after ${formatDuration(Date.now() - this.#startedAt)}; data kept in ${this.#dataDir}`,
      )
  }
}

/**
 * How the person who started this stack runs the CLI from another terminal: through npm in a checkout of
 * Fleet (`npm start` there: no `fleet` on the PATH), through npx in a project that depends on it, `fleet`
 * when it is on the PATH, else the built CLI by its path.
 */
export function fleetCommand(env: NodeJS.ProcessEnv = process.env): string {
  if (env.npm_lifecycle_event)
    return env.npm_package_name === '@fleet-stack/fleet' ? 'npm run fleet --' : 'npx fleet'
  const onPath = (env.PATH ?? '').split(path.delimiter).some((d) => d && existsSync(path.join(d, 'fleet')))
  return onPath ? 'fleet' : `node ${path.relative(process.cwd(), cliPath) || cliPath}`
}

/** True while `pid` exists. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
