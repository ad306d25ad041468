/**
 * The read-through protocol shared by cached queries and cached objects:
 * 1. read: validate the entry against the current tokens (one round trip); fresh -> HIT.
 * 2. miss: read the tokens of the entry's tags and try the fill lock (one round trip). The tokens are read
 *    BEFORE loading; the store is conditional on them, so a load that overlapped an invalidation is refused.
 * 3. lock held elsewhere: serve the stale entry when there is one, else poll (bounded by lockWait) for the
 *    other server's result, taking the lock over if it is released without a result; past lockWait, load
 *    without the lock.
 * 4. the loader runs under a soft timeout (only with a stale entry: serve it, finish in the background) and a
 *    hard timeout (fail with LoaderTimeoutError, or serve stale); a failing loader serves stale when it can.
 * Concurrent misses for one key inside a process share one flight.
 */
import { randomBytes } from 'node:crypto'
import type { Logger } from '../log.js'
import { LoaderTimeoutError } from './errors.js'
import type { CacheKind, CacheMetrics } from './metrics.js'
import { pack } from './serializer.js'
import { CacheBypass, type CacheStore, EPOCH_TAG, type ReadResult } from './store.js'

export type CacheStatus = 'HIT' | 'MISS' | 'STALE' | 'BYPASS'

/** Lets a loader declare tags found while it runs; call it BEFORE reading the data the tags cover. */
export type Depend = (tags: readonly string[]) => Promise<void>

export interface FillOptions {
  ttlMs: number
  graceMs: number
  softTimeoutMs: number
  hardTimeoutMs: number
  lockWaitMs: number
}

export interface Fetched {
  payload: Buffer
  status: CacheStatus
  /** Set when the value did not go through the serializer (BYPASS): the caller may use it as is. */
  value?: unknown
  /**
   * performance.now() at which the value was known current: every write acknowledged before this time is in
   * it. A reader that joins another reader's flight accepts its result only if this is not before its own
   * start (otherwise the flight may have loaded before a write the joiner must see).
   */
  validAt: number
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Adds `<table>:*` for each entity tag `<table>:<id>`: an entry of product 42 is also invalidated by "all products rows". */
export function withWildcards(tags: Iterable<string>): string[] {
  const out = new Set<string>()
  for (const t of tags) {
    out.add(t)
    const i = t.indexOf(':')
    if (i > 0 && !t.endsWith(':*')) out.add(`${t.slice(0, i)}:*`)
  }
  return [...out]
}

export class Filler {
  readonly #store: CacheStore
  readonly #metrics: CacheMetrics
  readonly #logger: Logger | undefined
  readonly #now: () => number
  readonly #flights = new Map<string, Promise<Fetched>>()
  readonly #background = new Set<Promise<unknown>>()

  constructor(store: CacheStore, metrics: CacheMetrics, logger: Logger | undefined, now: () => number) {
    this.#store = store
    this.#metrics = metrics
    this.#logger = logger
    this.#now = now
  }

  /** Reads `key` through the cache; `load` runs on a miss. `tags` are known before loading. */
  async fetch(
    kind: CacheKind,
    key: string,
    tags: readonly string[],
    load: (depend: Depend) => Promise<unknown>,
    o: FillOptions,
  ): Promise<Fetched> {
    const started = performance.now()
    let read: ReadResult
    try {
      read = await this.#store.read(key, this.#now())
    } catch (err) {
      if (!(err instanceof CacheBypass)) throw err
      this.#metrics.inc('bypass', kind)
      return this.#direct(load)
    }
    if (read.kind === 'fresh') {
      this.#metrics.inc('hits', kind)
      return { payload: read.payload, status: 'HIT', validAt: started }
    }
    const stale = read.kind === 'stale' ? read.payload : undefined
    let flight = this.#flights.get(key)
    let r: Fetched
    if (flight) {
      r = await flight
      // The flight began before this read: its result may predate a write this read must see.
      if (r.validAt < started) r = await this.#fill(kind, key, tags, load, o, stale, started)
    } else {
      flight = this.#fill(kind, key, tags, load, o, stale, started).finally(() => this.#flights.delete(key))
      this.#flights.set(key, flight)
      r = await flight
    }
    if (r.status === 'MISS') this.#metrics.inc('misses', kind)
    else if (r.status === 'STALE') this.#metrics.inc('stale', kind)
    else if (r.status === 'HIT') this.#metrics.inc('hits', kind)
    else this.#metrics.inc('bypass', kind)
    return r
  }

  /** Loads and stores ahead of time (workers), ignoring what is cached; conditional like any fill. */
  async prime(
    kind: CacheKind,
    key: string,
    tags: readonly string[],
    load: (depend: Depend) => Promise<unknown>,
    o: FillOptions,
  ): Promise<{ value: unknown; stored: boolean }> {
    const { tokens } = await this.#store.begin(key, [EPOCH_TAG, ...tags], '', false)
    const run = this.#run(kind, key, [EPOCH_TAG, ...tags], tokens, load)
    const loaded = await run.promise
    const payload = pack(loaded.value)
    const stored = loaded.storable
      ? await this.#store.fill(
          key,
          '',
          payload,
          this.#now() + o.ttlMs,
          o.ttlMs + o.graceMs,
          loaded.tags,
          loaded.tokens,
        )
      : false
    this.#countFill(kind, stored)
    return { value: loaded.value, stored }
  }

  async #fill(
    kind: CacheKind,
    key: string,
    tags: readonly string[],
    load: (depend: Depend) => Promise<unknown>,
    o: FillOptions,
    stale: Buffer | undefined,
    readAt: number,
  ): Promise<Fetched> {
    const all = [EPOCH_TAG, ...tags]
    const owner = randomBytes(9).toString('base64url')
    let begun: { locked: boolean; filled: boolean; tokens: string[] }
    try {
      begun = await this.#store.begin(key, all, owner)
    } catch (err) {
      if (!(err instanceof CacheBypass)) throw err
      return this.#direct(load)
    }
    if (!begun.locked) {
      if (stale) return { payload: stale, status: 'STALE', validAt: readAt }
      this.#metrics.inc('lockWaits', kind)
      const deadline = this.#now() + o.lockWaitMs
      let delay = 5
      while (this.#now() < deadline) {
        await sleep(Math.min(delay, Math.max(1, deadline - this.#now())))
        delay = Math.min(delay * 2, 50)
        try {
          const at = performance.now()
          const r = await this.#store.read(key, this.#now())
          if (r.kind === 'fresh') return { payload: r.payload, status: 'HIT', validAt: at }
          if (r.kind === 'stale') return { payload: r.payload, status: 'STALE', validAt: at }
          // No result yet: take the lock over if its holder gave up (failed loader, refused fill) and the
          // entry is still absent (checked in the same script, so a fill that just landed is read instead).
          const again = await this.#store.begin(key, all, owner, true)
          if (again.filled) continue
          begun = again
          if (begun.locked) break
        } catch (err) {
          if (!(err instanceof CacheBypass)) throw err
          return this.#direct(load)
        }
      }
    }
    return this.#lead(kind, key, all, begun.tokens, begun.locked ? owner : '', load, o, stale, readAt)
  }

  async #lead(
    kind: CacheKind,
    key: string,
    tags: readonly string[],
    tokens: readonly string[],
    owner: string,
    load: (depend: Depend) => Promise<unknown>,
    o: FillOptions,
    stale: Buffer | undefined,
    readAt: number,
  ): Promise<Fetched> {
    const loadAt = performance.now()
    const run = this.#run(kind, key, tags, tokens, load)
    const store = run.promise.then(async (loaded) => {
      const payload = pack(loaded.value)
      let stored = false
      const fillAt = performance.now()
      if (loaded.storable) {
        stored = await this.#store
          .fill(key, owner, payload, this.#now() + o.ttlMs, o.ttlMs + o.graceMs, loaded.tags, loaded.tokens)
          .catch(() => false)
      } else if (owner) await this.#store.release(key, owner)
      this.#countFill(kind, stored)
      // Stored: no tag changed from before the load until the fill ran, so the value was current then.
      return { payload, validAt: stored ? fillAt : loadAt }
    })
    const failed = (err: unknown): Fetched => {
      this.#metrics.inc('loaderErrors', kind)
      if (owner) void this.#store.release(key, owner)
      if (stale) {
        this.#logger?.warn({ err, key }, 'cache loader failed; serving the stale entry')
        return { payload: stale, status: 'STALE', validAt: readAt }
      }
      throw err
    }
    const timers: NodeJS.Timeout[] = []
    const after = (ms: number, what: 'soft' | 'hard') =>
      new Promise<'soft' | 'hard'>((resolve) => timers.push(setTimeout(() => resolve(what), ms)))
    const racers: Promise<{ payload: Buffer; validAt: number } | 'soft' | 'hard'>[] = [
      store,
      after(o.hardTimeoutMs, 'hard'),
    ]
    if (stale && o.softTimeoutMs < o.hardTimeoutMs) racers.push(after(o.softTimeoutMs, 'soft'))
    try {
      const winner = await Promise.race(racers)
      if (winner === 'soft') {
        this.#keep(store)
        return { payload: stale as Buffer, status: 'STALE', validAt: readAt }
      }
      if (winner === 'hard') {
        this.#keep(store)
        throw new LoaderTimeoutError(key, o.hardTimeoutMs)
      }
      return { ...winner, status: 'MISS' }
    } catch (err) {
      return failed(err)
    } finally {
      for (const t of timers) clearTimeout(t)
    }
  }

  /** Loads from PostgreSQL without the cache (BYPASS). */
  async #direct(load: (depend: Depend) => Promise<unknown>): Promise<Fetched> {
    const validAt = performance.now()
    return { payload: Buffer.alloc(0), status: 'BYPASS', value: await load(async () => {}), validAt }
  }

  /** Runs the loader, collecting the tags (and their tokens) it declares while it runs. */
  #run(
    _kind: CacheKind,
    _key: string,
    tags: readonly string[],
    tokens: readonly string[],
    load: (depend: Depend) => Promise<unknown>,
  ): { promise: Promise<{ value: unknown; tags: string[]; tokens: string[]; storable: boolean }> } {
    const allTags = [...tags]
    const allTokens = [...tokens]
    let storable = true
    const depend: Depend = async (more) => {
      const fresh = withWildcards(more).filter((t) => !allTags.includes(t))
      if (fresh.length === 0) return
      try {
        const got = await this.#store.tokens(fresh)
        allTags.push(...fresh)
        allTokens.push(...got)
      } catch {
        storable = false // without the tokens the result cannot be validated later: do not store it
      }
    }
    return {
      promise: load(depend).then((value) => ({ value, tags: allTags, tokens: allTokens, storable })),
    }
  }

  #countFill(kind: CacheKind, stored: boolean): void {
    if (stored) this.#metrics.inc('fills', kind)
    else this.#metrics.inc('fillsRefused', kind)
  }

  /** Keeps a background completion referenced (and its rejection handled) until it settles. */
  #keep(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) => this.#logger?.warn({ err }, 'background cache fill failed'))
    this.#background.add(q)
    void q.finally(() => this.#background.delete(q))
  }

  /** Resolves when background fills have settled (for close and tests). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#background])
  }
}
