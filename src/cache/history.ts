/**
 * Which replication history of the cache Redis the cache talks to. Entries are validated against tokens
 * that writers bump; a promoted replica may have missed the last bumps, and a restarted Redis may have lost
 * them (or everything), so an entry built under an old token would validate as fresh there. The guard makes
 * sure no cache command reaches a server before the `history` script (scripts.ts) has run on the current
 * connection: that script compares the server's own identity (run_id and master_replid, read inside the
 * script) with the one recorded with the epoch, and replaces the epoch when they differ.
 *
 * When a check is due: at the first command, after every close of the connection (a new socket may reach
 * another server: a failover behind Sentinel, a moved address, a restart), and after a failed command (a
 * READONLY answer from a demoted primary, a timeout). ioredis emits `close` on the tick after the socket
 * closed and reconnects only after its retry delay and a new socket's handshake, so no command of ours can
 * be written to a new socket before the close is counted. A reply that arrives after a close (a command a
 * connection re-sent on its new socket) is not trusted: `closes` tells the caller to drop it.
 *
 * `watch` also checks in the background, for the one change no close or failed command announces: the server
 * under an open connection demoted, resynchronized and promoted again between two commands. While it is a
 * replica every cache script is refused (scripts.ts), so a connection in use finds out from its own commands;
 * the background check runs only on a connection that sent nothing since its previous tick (so it never adds
 * a command to a busy one).
 */
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { scripts } from './scripts.js'

export interface HistoryOptions {
  /** `<prefix>{cache}:h`: the identity the epoch was made under. */
  historyKey: string
  /** The epoch token's key (`<prefix>{cache}:t:*`). */
  epochKey: string
  tokenTtlMs: number
  /**
   * Called when this process found a new history and replaced the epoch (`identity` '' when unknown;
   * `previous` the one this process saw before, undefined at its first check).
   */
  onNewHistory?: (identity: string, previous: string | undefined) => void
  /** Called once when the server is older than Redis 7.0 (no script flags: see scripts.ts). */
  onNoScriptFlags?: (major: number) => void
}

export class HistoryGuard {
  readonly #redis: Redis
  readonly #o: HistoryOptions
  #closes = 0
  /** Closes and failed commands so far; a check covers those counted when it began. */
  #changes = 0
  #checked = -1
  #checking: Promise<void> | undefined
  #identity: string | undefined
  /** False once a check found a Redis before 7.0, whose scripts cannot carry flags. */
  #flags = true
  #timer: NodeJS.Timeout | undefined
  /** Commands sent, and as of the last background tick. */
  #sent = 0
  #sentAtTick = 0
  readonly #onClose = (): void => {
    this.#closes++
    this.#changes++
  }

  constructor(redis: Redis, options: HistoryOptions) {
    this.#redis = redis
    this.#o = options
    redis.on('close', this.#onClose)
  }

  /** Closes of the connection so far: a reply is trusted only when this did not change while it was awaited. */
  get closes(): number {
    return this.#closes
  }

  /** True while a command must wait for `check()` before it is sent. */
  get due(): boolean {
    return this.#checked !== this.#changes
  }

  /** The identity (`<run_id>/<master_replid>`) found by the last check; undefined before the first. */
  get identity(): string | undefined {
    return this.#identity
  }

  /** True unless the server was found older than Redis 7.0: then the store runs the scripts without flags. */
  get flags(): boolean {
    return this.#flags
  }

  /** A cache command is being sent (the background check skips a connection in use). */
  sending(): void {
    this.#sent++
  }

  /** A command failed: the server may not be the one checked (the next command checks again). */
  suspect(): void {
    this.#changes++
  }

  /** Runs the history script (one at a time); rejects when Redis cannot say, and the check stays due. */
  check(): Promise<void> {
    this.#checking ??= this.#check().finally(() => {
      this.#checking = undefined
    })
    return this.#checking
  }

  async #check(): Promise<void> {
    const changes = this.#changes
    const closes = this.#closes
    const [state, identity, major] = (await scripts.history.run(
      this.#redis,
      [this.#o.historyKey, this.#o.epochKey],
      [randomBytes(9).toString('base64url'), this.#o.tokenTtlMs],
    )) as [0 | 1 | 2, string, number]
    if (this.#closes !== closes) throw new Error('the cache Redis connection closed during the history check')
    const flags = major >= 7
    if (!flags && this.#flags) this.#o.onNoScriptFlags?.(major)
    this.#flags = flags
    if (state === 1 || (state === 2 && this.#identity !== ''))
      this.#o.onNewHistory?.(identity, this.#identity)
    this.#identity = identity
    this.#checked = changes
  }

  /**
   * Checks every `everyMs` in the background while connected and idle: only when no command was sent since the
   * last tick (timer unref'd; `close()` stops it).
   */
  watch(everyMs: number): void {
    if (this.#timer) return
    this.#timer = setInterval(() => {
      const busy = this.#sent !== this.#sentAtTick
      this.#sentAtTick = this.#sent
      // A server that gives no identity has its epoch replaced at every check: only on a close or failure then.
      if (busy || this.#redis.status !== 'ready' || this.#checking || this.#identity === '') return
      this.check().catch(() => this.suspect())
    }, everyMs)
    this.#timer.unref()
  }

  close(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#redis.off('close', this.#onClose)
  }
}
