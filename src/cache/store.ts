/**
 * The cache's Redis side: entries, tag tokens and fill locks under `<prefix>{cache}:`, reached only through
 * the scripts in scripts.ts and guarded by the circuit breaker. A call the breaker refuses, or one that
 * fails, rejects with CacheBypass: the caller then goes to PostgreSQL.
 *
 * "Dirty": when an invalidation may have been lost (a bump failed, or the LISTEN connection was down), the
 * next call first replaces the epoch token `*` that every entry depends on, so no entry written before the
 * loss can be served. Before the first call, and after the connection dropped or a call failed, the next call
 * first checks which replication history the server is on (history.ts): a restarted Redis or a promoted
 * replica gets a new epoch, once for all processes; the same Redis behind a dropped connection keeps what it
 * held, and the cache with it. A reply that arrives after the connection closed is dropped (CacheBypass).
 */
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Breaker } from './breaker.js'
import type { Encoded } from './fill.js'
import { HistoryGuard } from './history.js'
import { type CacheScripts, scripts, unflaggedScripts } from './scripts.js'

/** Internal signal: the cache Redis cannot be used right now; serve from PostgreSQL. */
export class CacheBypass extends Error {}

/** The tag every entry depends on; replacing its token invalidates the whole cache at once. */
export const EPOCH_TAG = '*'

export type ReadResult =
  | { kind: 'absent' | 'invalid' }
  | { kind: 'stale'; payload: Buffer }
  /** `payload` is the entry's head (responses.ts): the body stayed in Redis. */
  | { kind: 'not-modified'; payload: Buffer }
  /** `deps` when asked for: the entry's tags and the tokens it was just validated against. */
  | { kind: 'fresh'; payload: Buffer; deps?: { tags: string[]; tokens: string[] } }

export interface StoreOptions {
  prefix: string
  tokenTtlMs: number
  lockTtlMs: number
  breaker: Breaker
  onError?: (err: unknown) => void
  /** This process found the cache Redis on a new replication history and replaced the epoch. */
  onNewHistory?: (identity: string, previous: string | undefined) => void
  /** The cache Redis is older than 7.0: its scripts run without flags (a replica does not refuse them). */
  onNoScriptFlags?: (major: number) => void
  /** Which script set to run; by default the history check picks it from the server's version. */
  scriptFlags?: boolean
}

function unique(): string {
  return randomBytes(9).toString('base64url')
}

export class CacheStore {
  readonly #redis: Redis
  readonly #o: StoreOptions
  readonly #base: string
  #dirty = false
  /** Reads by outcome since the last flush: absent, invalid, fresh, stale (the read script's codes). */
  #counts = [0, 0, 0, 0]
  readonly #history: HistoryGuard
  readonly #onClose = (): void => {
    this.#o.breaker.open()
  }

  constructor(redis: Redis, options: StoreOptions) {
    this.#redis = redis
    this.#o = options
    this.#base = `${options.prefix}{cache}:`
    this.#history = new HistoryGuard(redis, {
      historyKey: this.historyKey,
      epochKey: this.tokenKey(EPOCH_TAG),
      tokenTtlMs: options.tokenTtlMs,
      onNewHistory: options.onNewHistory,
      onNoScriptFlags: options.onNoScriptFlags,
    })
    redis.on('close', this.#onClose)
  }

  get redis(): Redis {
    return this.#redis
  }

  /** Key prefix of everything the cache writes (for operators: SCAN patterns). */
  get base(): string {
    return this.#base
  }

  entryKey(key: string): string {
    return `${this.#base}e:${key}`
  }
  lockKey(key: string): string {
    return `${this.#base}l:${key}`
  }
  tokenKey(tag: string): string {
    return `${this.#base}t:${tag}`
  }
  get statsKey(): string {
    return `${this.#base}stats`
  }
  /** The identity of the replication history the epoch was made under (history.ts). */
  get historyKey(): string {
    return `${this.#base}h`
  }

  /** The script set for the server: flagged from Redis 7.0 on (scripts.ts); chosen by the history check. */
  get #scripts(): CacheScripts {
    return (this.#o.scriptFlags ?? this.#history.flags) ? scripts : unflaggedScripts
  }

  /** True while an invalidation may have been lost (reads bypass until the epoch is replaced). */
  get dirty(): boolean {
    return this.#dirty
  }

  /** Marks a possible lost invalidation (e.g. the LISTEN connection was down). */
  markDirty(): void {
    this.#dirty = true
  }

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    const breaker = this.#o.breaker
    if (!breaker.allow()) throw new CacheBypass('cache breaker open')
    const history = this.#history
    try {
      // Each await may span a reconnect: loop until nothing is due, then send in the same tick.
      for (;;) {
        if (history.due) await history.check()
        else if (this.#dirty) {
          await this.#bumpRaw([EPOCH_TAG])
          this.#dirty = false
        } else break
      }
      const closes = history.closes
      history.sending()
      const r = await fn()
      if (history.closes !== closes) throw new Error('the cache Redis connection closed before the reply')
      breaker.success()
      return r
    } catch (err) {
      history.suspect()
      breaker.failure()
      this.#o.onError?.(err)
      throw new CacheBypass('cache Redis failed', { cause: err })
    }
  }

  /** Checks the server's replication history every `everyMs` in the background (see history.ts). */
  watchHistory(everyMs: number): void {
    this.#history.watch(everyMs)
  }

  /** `<run_id>/<master_replid>` of the cache Redis as last checked ('' when it gives none). */
  get history(): string | undefined {
    return this.#history.identity
  }

  /**
   * Reads and validates an entry in one round trip. With `ifNoneMatch` (a request's If-None-Match), a fresh
   * entry whose ETag it names answers `not-modified` with the entry's head only; with `withDeps`, a fresh
   * entry comes with its tags and tokens.
   */
  read(key: string, now: number, ifNoneMatch = '', withDeps = false): Promise<ReadResult> {
    return this.#run(async () => {
      const r = (await this.#scripts.read.runBuffer(
        this.#redis,
        [this.entryKey(key)],
        [now, ifNoneMatch, withDeps ? '1' : ''],
      )) as Buffer | 0 | 1 | [2, Buffer, Buffer, Buffer] | [3 | 4, Buffer]
      if (Buffer.isBuffer(r)) {
        this.#counts[2]++
        return { kind: 'fresh', payload: r }
      }
      if (Array.isArray(r)) {
        if (r[0] === 3) {
          this.#counts[3]++
          return { kind: 'stale', payload: r[1] }
        }
        this.#counts[2]++
        if (r[0] === 4) return { kind: 'not-modified', payload: r[1] }
        const lines = (b: Buffer | undefined) => (b && b.length > 0 ? b.toString().split('\n') : [])
        return { kind: 'fresh', payload: r[1], deps: { tags: lines(r[2]), tokens: lines(r[3]) } }
      }
      this.#counts[r]++
      return { kind: r === 1 ? 'invalid' : 'absent' }
    })
  }

  /**
   * Reads the tokens of `tags` (creating missing ones) and, when `owner` is given, tries to take the fill lock;
   * with `ifAbsent`, only while the entry does not exist (`filled` then says it appeared meanwhile).
   */
  begin(
    key: string,
    tags: readonly string[],
    owner: string,
    ifAbsent = false,
  ): Promise<{ locked: boolean; filled: boolean; tokens: string[] }> {
    return this.#run(async () => {
      const r = (await this.#scripts.begin.runBuffer(
        this.#redis,
        [this.lockKey(key), this.entryKey(key), ...tags.map((t) => this.tokenKey(t))],
        [unique(), this.#o.tokenTtlMs, owner, this.#o.lockTtlMs, ifAbsent ? '1' : '0'],
      )) as [number, ...Buffer[]]
      return { locked: r[0] === 1, filled: r[0] === 2, tokens: r.slice(1).map((b) => b.toString()) }
    })
  }

  /** Reads the tokens of more tags during a load (creating missing ones). */
  tokens(tags: readonly string[]): Promise<string[]> {
    if (tags.length === 0) return Promise.resolve([])
    return this.#run(async () => {
      const r = (await this.#scripts.tokens.runBuffer(
        this.#redis,
        tags.map((t) => this.tokenKey(t)),
        [unique(), this.#o.tokenTtlMs],
      )) as Buffer[]
      return r.map((b) => b.toString())
    })
  }

  /** Stores the entry if no tag changed since its tokens were read; releases the lock held by `owner`. */
  fill(
    key: string,
    owner: string,
    entry: Encoded,
    freshUntil: number,
    lifetimeMs: number,
    tags: readonly string[],
    tokens: readonly string[],
  ): Promise<boolean> {
    return this.#run(async () => {
      const r = await this.#scripts.fill.runBuffer(
        this.#redis,
        [this.entryKey(key), this.lockKey(key), this.statsKey, ...tags.map((t) => this.tokenKey(t))],
        [
          owner,
          entry.payload,
          freshUntil,
          Math.max(1, Math.ceil(lifetimeMs)),
          tags.join('\n'),
          tokens.join('\n'),
          entry.etag ?? '',
          entry.head ?? '',
        ],
      )
      return r === 1
    })
  }

  /** Drops the fill lock if `owner` still holds it (best effort). */
  async release(key: string, owner: string): Promise<void> {
    const release = () => this.#scripts.release.runBuffer(this.#redis, [this.lockKey(key)], [owner])
    await this.#run(release).catch(() => {})
  }

  /**
   * Replaces the tokens of `tags`: every entry built from them becomes a miss. When Redis cannot be reached the
   * store turns dirty (the next successful call replaces the epoch first) and this rejects with CacheBypass.
   */
  async bump(tags: readonly string[]): Promise<void> {
    if (tags.length === 0) return
    try {
      await this.#run(() => this.#bumpRaw(tags))
    } catch (err) {
      this.#dirty = true
      throw err
    }
  }

  async #bumpRaw(tags: readonly string[]): Promise<void> {
    await this.#scripts.bump.runBuffer(
      this.#redis,
      [...tags.map((t) => this.tokenKey(t)), this.statsKey],
      [unique(), this.#o.tokenTtlMs],
    )
  }

  /**
   * Adds this process's read counters to the shared stats hash (for `fleet cache stats`); kept out of the
   * read script so that a hit writes nothing. Best effort: counts are lost when Redis is away.
   */
  async flushCounts(): Promise<void> {
    const [miss, invalid, hit, expired] = this.#counts
    if (miss + invalid + hit + expired === 0) return
    this.#counts = [0, 0, 0, 0]
    const m = this.#redis.multi()
    if (hit) m.hincrby(this.statsKey, 'hit', hit)
    if (miss) m.hincrby(this.statsKey, 'miss', miss)
    if (invalid) m.hincrby(this.statsKey, 'invalid', invalid)
    if (expired) m.hincrby(this.statsKey, 'expired', expired)
    // The history key is read only by checks (rare on a busy connection): keep LRU eviction away from it,
    // since losing it replaces the epoch at the next check (a cold cache, never a stale one).
    m.touch(this.historyKey)
    await m.exec().catch(() => {})
  }

  close(): void {
    this.#history.close()
    this.#redis.off('close', this.#onClose)
  }
}
