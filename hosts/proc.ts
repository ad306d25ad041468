/**
 * A service on a host of the bed, as systemd runs it: started with `ip netns exec <namespace>` and exactly
 * the command and environment given, its output appended to a log file (the journal), restarted
 * `restartSec` after it exits (Restart=always) until it is stopped or its host powered off.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import type { StartSpec } from './deploy.js'

export class Service {
  #child: ChildProcess | undefined
  #wanted = false
  #timer: NodeJS.Timeout | undefined
  /** How many times it was started (1 + restarts). */
  starts = 0

  /**
   * @param name the service (`fleet-web`, `redis-store`...), for its log file and messages
   * @param ns the host's namespace
   */
  constructor(
    readonly name: string,
    readonly ns: string,
    readonly spec: StartSpec,
    readonly logFile: string,
  ) {}

  get pid(): number | undefined {
    return this.#child?.exitCode === null && this.#child.signalCode === null ? this.#child.pid : undefined
  }

  /** Starts it, and again after each exit while wanted. */
  start(): void {
    this.#wanted = true
    this.#spawn()
  }

  #spawn(): void {
    if (!this.#wanted) return
    const { command, args, env, cwd, nice } = this.spec
    const out = fs.openSync(this.logFile, 'a')
    fs.writeSync(out, `--- ${new Date().toISOString()} start ${command} ${args.join(' ')}\n`)
    // `ip netns exec` execs the command itself (same pid) with the environment it was given.
    const argv = ['netns', 'exec', this.ns, ...(nice ? ['nice', '-n', String(nice)] : []), command, ...args]
    // Its own process group: a Ctrl-C in the terminal reaches only the bed, which then stops it in order.
    const child = spawn('ip', argv, { env, cwd, stdio: ['ignore', out, out], detached: true })
    fs.closeSync(out)
    this.starts++
    this.#child = child
    child.on('error', () => undefined)
    child.once('exit', () => {
      if (!this.#wanted) return
      this.#timer = setTimeout(() => this.#spawn(), this.spec.restartSec * 1000)
    })
  }

  /** No more restarts (the caller kills what runs: SIGTERM, or a power-off's SIGKILL of the namespace). */
  forget(): void {
    this.#wanted = false
    clearTimeout(this.#timer)
  }

  /** SIGTERM, then SIGKILL after `ms`; resolves once it exited. */
  async stop(ms = 15_000): Promise<void> {
    this.forget()
    const child = this.#child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((r) => child.once('exit', () => r()))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), ms)
    await exited
    clearTimeout(timer)
  }
}
