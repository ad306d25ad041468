/**
 * Keeps a store that `fleet up` started (embedded PostgreSQL, a redis-server) running: when it exits on its
 * own, it is started again on the same port and data folder, after the same backoff as the other children
 * (PostgreSQL recovers from its WAL, Redis reloads its AOF). The processes that use it reconnect by
 * themselves meanwhile: web servers answer 503 while PostgreSQL is away, the cache bypasses a dead cache
 * Redis, workers wait for the store Redis.
 */
import { Backoff, type BackoffOptions, defaultBackoff } from './backoff.js'
import { formatDuration } from './status.js'

/** What the keeper needs of a store: EmbeddedPostgres and LocalRedis have it. */
export interface StoreProcess {
  start(): Promise<unknown>
  stop(timeoutMs: number): Promise<void>
  readonly pid: number | undefined
  readonly exited: Promise<void> | undefined
}

export type KeptState = 'ready' | 'backoff' | 'starting' | 'stopping' | 'stopped'

export interface StoreKeeperOptions {
  role: 'postgres' | 'redis'
  name: string
  port: number
  /** When the first start began. */
  startedAt: number
  /** A progress line for the user. */
  say: (line: string) => void
  backoff?: BackoffOptions
}

export class StoreKeeper {
  readonly role: 'postgres' | 'redis'
  readonly name: string
  readonly port: number
  state: KeptState = 'ready'
  restarts = 0
  lastExit: string | undefined
  nextStartAt: number | undefined
  startedAt: number
  readonly #store: StoreProcess
  readonly #o: StoreKeeperOptions
  readonly #backoff: Backoff
  #stopped = false
  #wake: (() => void) | undefined

  /** `store` has started; call `watch()` to restart it when it exits. */
  constructor(store: StoreProcess, options: StoreKeeperOptions) {
    this.#store = store
    this.#o = options
    this.role = options.role
    this.name = options.name
    this.port = options.port
    this.startedAt = options.startedAt
    this.#backoff = new Backoff(options.backoff ?? defaultBackoff)
  }

  pid(): number | undefined {
    return this.state === 'ready' || this.state === 'starting' ? this.#store.pid : undefined
  }

  /** Starts watching the store: from now on an exit that `stop()` did not cause starts it again. */
  watch(): void {
    void this.#loop()
  }

  async #loop(): Promise<void> {
    for (;;) {
      await this.#store.exited
      if (this.#stopped) return
      this.lastExit = 'exited'
      let ranMs = Date.now() - this.startedAt
      for (;;) {
        const delay = this.#backoff.next(ranMs)
        this.state = 'backoff'
        this.nextStartAt = Date.now() + delay
        this.#o.say(`${this.name} exited; starting it again in ${formatDuration(delay)}`)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay)
          this.#wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        if (this.#stopped) return
        this.state = 'starting'
        this.nextStartAt = undefined
        try {
          await this.#store.start()
          if (this.#stopped) {
            await this.#store.stop(30_000) // stop() came while it was starting
            return
          }
          break
        } catch (err) {
          if (this.#stopped) return
          this.#o.say(`${this.name} did not start again: ${(err as Error).message.split('\n')[0]}`)
          ranMs = 0
        }
      }
      this.restarts++
      this.startedAt = Date.now()
      this.state = 'ready'
      this.#o.say(`${this.name} is back (restart ${this.restarts})`)
    }
  }

  /** Stops the store for good (no restart after this). */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopped = true
    this.#wake?.()
    this.state = 'stopping'
    await this.#store.stop(timeoutMs)
    this.state = 'stopped'
  }
}
