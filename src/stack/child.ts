/**
 * One supervised child process: spawned in its own process group (so a Ctrl-C in the terminal reaches only
 * the supervisor, which then stops everything in order), probed until ready, restarted with backoff when
 * it exits on its own, stopped with SIGTERM and, past a timeout, SIGKILL.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import readline from 'node:readline'
import { Backoff, type BackoffOptions, defaultBackoff } from './backoff.js'
import { ChildNotReadyError } from './errors.js'
import { LogAppender, parseLogLine } from './log-file.js'
import { lowerPriority } from './priority.js'
import { probe, type Readiness } from './probe.js'

export type ChildState = 'starting' | 'ready' | 'backoff' | 'stopping' | 'stopped' | 'crashed'

export interface ChildSpec {
  /** What it is (`web`, `worker`, `lb`); `fleet restart <role>` restarts every child of a role. */
  role: string
  /** Stable name (`web-1`), unique in the stack. */
  name: string
  command: string
  args: readonly string[]
  env: NodeJS.ProcessEnv
  /** The port it serves on, for the status view. */
  port?: number
  readiness: Readiness
  /** CPU niceness of the child and all its threads (19: workers, below the web tier). */
  nice?: number
  /** Every line the child writes on stdout and stderr is appended here (but see `writesOwnLog`). */
  logFile?: string
  /**
   * The child's logger writes its JSON lines to `logFile` itself (FLEET_LOG_FILE in `env`): those that also
   * come on stderr (warn and above) are not appended again; only what it wrote without its logger is.
   */
  writesOwnLog?: boolean
  /** Every line the child writes, as it comes. */
  onLine?: (name: string, line: string, stream: 'stdout' | 'stderr') => void
  /** Called on every state change, after the change. */
  onState?: (child: ChildSnapshot, previous: ChildState) => void
  backoff?: BackoffOptions
}

/** What the status view and the control socket show about a child. */
export interface ChildSnapshot {
  role: string
  name: string
  pid: number | undefined
  port: number | undefined
  state: ChildState
  /** Times it was started again after exiting on its own. */
  restarts: number
  /** Epoch ms when the current process started (undefined when none runs). */
  startedAt: number | undefined
  /** How the last process ended on its own (`exit code 1`, `signal SIGKILL`). */
  lastExit: string | undefined
  /** Epoch ms of the next start while in backoff. */
  nextStartAt: number | undefined
}

interface Waiter {
  resolve: () => void
  reject: (err: Error) => void
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export class Child {
  readonly #spec: ChildSpec
  readonly #backoff: Backoff
  readonly #log: LogAppender | undefined
  #proc: ChildProcess | undefined
  #exited: Promise<void> = Promise.resolve()
  #state: ChildState = 'stopped'
  #want: 'running' | 'stopped' = 'stopped'
  #generation = 0
  #restarts = 0
  #startedAt: number | undefined
  #lastExit: string | undefined
  #nextStartAt: number | undefined
  #timer: NodeJS.Timeout | undefined
  #waiters: Waiter[] = []
  #retired = false

  constructor(spec: ChildSpec) {
    this.#spec = spec
    this.#backoff = new Backoff(spec.backoff ?? defaultBackoff)
    this.#log = spec.logFile ? new LogAppender(spec.logFile) : undefined
  }

  get name(): string {
    return this.#spec.name
  }

  get role(): string {
    return this.#spec.role
  }

  get state(): ChildState {
    return this.#state
  }

  get pid(): number | undefined {
    return this.#proc?.pid
  }

  snapshot(): ChildSnapshot {
    return {
      role: this.#spec.role,
      name: this.#spec.name,
      pid: this.#proc?.pid,
      port: this.#spec.port,
      state: this.#state,
      restarts: this.#restarts,
      startedAt: this.#proc ? this.#startedAt : undefined,
      lastExit: this.#lastExit,
      nextStartAt: this.#state === 'backoff' ? this.#nextStartAt : undefined,
    }
  }

  /** Starts the process (no-op when it is already meant to run or was retired); readiness comes later. */
  start(): void {
    if (this.#want === 'running' || this.#retired) return
    this.#want = 'running'
    this.#spawn()
  }

  /**
   * Resolves once the child is ready; rejects when it crashes, is stopped, or is not ready in `timeoutMs`.
   */
  waitReady(timeoutMs: number): Promise<void> {
    if (this.#state === 'ready') return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        reject(new ChildNotReadyError(this.name, `still ${this.#state} after ${timeoutMs} ms`))
      }, timeoutMs)
      const waiter: Waiter = {
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
        reject: (err) => {
          clearTimeout(timer)
          reject(err)
        },
      }
      this.#waiters.push(waiter)
    })
  }

  /**
   * SIGTERM, then SIGKILL after `timeoutMs`; resolves once the process is gone. Cancels a pending restart.
   * `retire`: it never starts again (the stack is stopping), even if a rolling restart wanted it back.
   */
  async stop(timeoutMs: number, options: { retire?: boolean } = {}): Promise<void> {
    if (options.retire) this.#retired = true
    this.#want = 'stopped'
    clearTimeout(this.#timer)
    const proc = this.#proc
    if (!proc) {
      this.#setState('stopped')
      return
    }
    this.#setState('stopping')
    proc.kill('SIGTERM')
    const force = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
    await this.#exited
    clearTimeout(force)
  }

  /** SIGKILL now; it never starts again; resolves once the process is gone. */
  async kill(): Promise<void> {
    this.#retired = true
    this.#want = 'stopped'
    clearTimeout(this.#timer)
    if (!this.#proc) {
      this.#setState('stopped')
      return
    }
    this.#setState('stopping')
    this.#proc.kill('SIGKILL')
    await this.#exited
  }

  /** A graceful restart: stop (SIGTERM, drain), start again, wait until ready. */
  async restart(stopTimeoutMs: number, readyTimeoutMs: number): Promise<void> {
    await this.stop(stopTimeoutMs)
    if (this.#retired) throw new ChildNotReadyError(this.name, 'the stack is stopping')
    this.start()
    await this.waitReady(readyTimeoutMs)
  }

  /** Resolves once every line the supervisor appends to the log file is written (after the final stop). */
  async close(): Promise<void> {
    await this.#log?.flush()
  }

  #spawn(): void {
    const generation = ++this.#generation
    this.#nextStartAt = undefined
    this.#startedAt = Date.now()
    const proc = spawn(this.#spec.command, [...this.#spec.args], {
      env: this.#spec.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    this.#proc = proc
    let resolveExit: () => void = () => {}
    this.#exited = new Promise((r) => {
      resolveExit = r
    })
    let ended = false
    const end = (how: string) => {
      if (ended) return
      ended = true
      this.#proc = undefined
      resolveExit()
      this.#onExit(how)
    }
    proc.once('error', (err) => {
      if (proc.pid === undefined) end(`could not start: ${err.message}`)
    })
    proc.once('exit', (code, signal) => end(signal ? `signal ${signal}` : `exit code ${code}`))
    for (const stream of ['stdout', 'stderr'] as const) {
      const input = proc[stream]
      if (!input) continue
      readline.createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
        if (!(this.#spec.writesOwnLog && parseLogLine(line))) this.#log?.write(line)
        this.#spec.onLine?.(this.name, line, stream)
      })
    }
    if (proc.pid !== undefined && this.#spec.nice !== undefined) lowerPriority(proc.pid, this.#spec.nice)
    this.#setState('starting')
    void this.#probeUntilReady(generation)
  }

  async #probeUntilReady(generation: number): Promise<void> {
    const since = Date.now()
    while (generation === this.#generation && this.#state === 'starting') {
      if (await probe(this.#spec.readiness)) {
        if (generation === this.#generation && this.#state === 'starting') {
          // Threads Node made before the first call kept the old priority (see priority.ts).
          const pid = this.#proc?.pid
          if (pid !== undefined && this.#spec.nice !== undefined) lowerPriority(pid, this.#spec.nice)
          this.#setState('ready')
          const waiters = this.#waiters
          this.#waiters = []
          for (const w of waiters) w.resolve()
        }
        return
      }
      await sleep(Date.now() - since < 10_000 ? 100 : 500)
    }
  }

  #onExit(how: string): void {
    this.#generation++
    if (this.#want === 'stopped') {
      this.#setState('stopped')
      this.#rejectWaiters(`it was stopped (${how})`)
      return
    }
    const uptime = Date.now() - (this.#startedAt ?? Date.now())
    this.#lastExit = how
    this.#setState('crashed')
    this.#rejectWaiters(`it exited (${how})`)
    const delay = this.#backoff.next(uptime)
    this.#nextStartAt = Date.now() + delay
    this.#setState('backoff')
    this.#timer = setTimeout(() => {
      if (this.#want !== 'running') return
      this.#restarts++
      this.#spawn()
    }, delay)
  }

  #rejectWaiters(detail: string): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w.reject(new ChildNotReadyError(this.name, detail))
  }

  #setState(state: ChildState): void {
    const previous = this.#state
    this.#state = state
    if (previous !== state || state === 'starting') this.#spec.onState?.(this.snapshot(), previous)
  }
}
