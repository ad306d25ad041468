/**
 * The stack under test, as a user runs it: `fleet up` (from dist/) with the chaos app, 3 web servers and 2
 * workers on free ports and a fresh data folder; asked about its processes through `fleet status`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { scratchUpEnv } from '../src/stack/scratch.js'
import type { StatusReport } from '../src/stack/status.js'
import { ADMIN, LB_ENGINE } from './options.js'
import { sleep } from './wait.js'

const run = promisify(execFile)
export const root = fileURLToPath(new URL('..', import.meta.url))
const cli = path.join(root, 'dist', 'cli.js')
const appPath = path.join(root, 'chaos', 'app.ts')

/** A running `fleet up`. */
export interface Up {
  proc: ChildProcess
  /** Its last 20 000 characters of output. */
  output: () => string
  exited: Promise<void>
}

export class Stack {
  /** The environment every `fleet` command of this stack runs with (ports, data folder, app). */
  readonly env: Record<string, string>
  /** The load balancer's URL. */
  readonly base: string
  /** The data folder. */
  readonly dir: string
  /** The current `fleet up` (a fault may kill it and start another). */
  up: Up | undefined
  /** Every pid `fleet status` ever showed: what the end of the run may have to kill. */
  readonly #seenPids = new Set<number>()

  constructor(dir: string, env: Record<string, string>) {
    this.dir = dir
    this.env = env
    this.base = `http://127.0.0.1:${env.FLEET_PORT}`
  }

  /** The settings of a stack in `dir`: free ports, 3 web servers, 2 workers, a seeded shop, the LB's engine. */
  static async create(dir: string): Promise<Stack> {
    const env = await scratchUpEnv(dir, {
      FLEET_APP: appPath,
      FLEET_WEB: '3',
      FLEET_WORKERS: '2',
      FLEET_SEED_PRODUCTS: '300',
      FLEET_SEED_REVIEWS: '300',
      FLEET_ADMIN_EMAIL: ADMIN.email,
      FLEET_ADMIN_PASSWORD: ADMIN.password,
      FLEET_SHUTDOWN_TIMEOUT: '5s',
      FLEET_LB_ENGINE: LB_ENGINE,
    })
    return new Stack(dir, env)
  }

  /** Starts `fleet up` (it becomes `up`). */
  start(): Up {
    const proc = spawn(process.execPath, [cli, 'up'], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    for (const s of [proc.stdout, proc.stderr]) s?.on('data', (c: Buffer) => (out = (out + c).slice(-20_000)))
    const exited = new Promise<void>((r) => proc.once('exit', () => r()))
    this.up = { proc, output: () => out, exited }
    return this.up
  }

  /** Runs `fleet <args>` against this stack; resolves with its stdout. */
  async fleet(args: string[], timeoutMs: number): Promise<string> {
    const { stdout } = await run(process.execPath, [cli, ...args], { env: this.env, timeout: timeoutMs })
    return stdout
  }

  /** The engine the load balancer says it runs (its admin /status), or undefined when it does not answer. */
  async lbEngine(): Promise<string | undefined> {
    const res = await fetch(`http://127.0.0.1:${this.env.FLEET_LB_ADMIN_PORT}/status`).catch(() => undefined)
    return ((await res?.json().catch(() => undefined)) as { engine?: string } | undefined)?.engine
  }

  async status(): Promise<StatusReport> {
    const report = JSON.parse(await this.fleet(['status', '--json'], 10_000)) as StatusReport
    for (const r of report.rows) if (r.pid) this.#seenPids.add(r.pid)
    return report
  }

  /** Every child ready (and, when given, `name` under another pid than `oldPid`). */
  async whole(name?: string, oldPid?: number): Promise<StatusReport | undefined> {
    const s = await this.status()
    if (s.phase !== 'running' || !s.rows.every((r) => r.state === 'ready')) return undefined
    if (name && oldPid && s.rows.find((r) => r.name === name)?.pid === oldPid) return undefined
    return s
  }

  async pidOf(name: string): Promise<number> {
    const row = (await this.status()).rows.find((r) => r.name === name)
    if (!row?.pid) throw new Error(`no pid for ${name}`)
    return row.pid
  }

  /** Stops `fleet up` (SIGTERM, at most 30 s), then SIGKILLs whatever of this stack is left. */
  async stop(): Promise<void> {
    const up = this.up
    if (up && up.proc.exitCode === null && up.proc.signalCode === null) {
      up.proc.kill('SIGTERM')
      await Promise.race([up.exited, sleep(30_000)])
    }
    // Only processes of this run: a pid seen earlier may belong to another program by now.
    const marks = [this.dir, cli, `:${this.env.FLEET_REDIS_PORT}`, `:${this.env.FLEET_CACHE_REDIS_PORT}`]
    for (const pid of this.#seenPids) {
      const cmd = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
      if (marks.some((m) => cmd.includes(m))) process.kill(pid, 'SIGKILL')
    }
  }
}
