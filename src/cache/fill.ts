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
 *
 * A load runs with a `Deps`: the tags its result depends on and the token each had before the data was read.
 * Tags found while loading are declared (`depend`: their tokens are read first) or adopted from a nested
 * cached read (`adopt`: the tokens that read validated). The fill stores the entry only if every one of them
 * is still current, so an entry built from other entries is as safe as one built from PostgreSQL.
 */
import { randomBytes } from 'node:crypto'
import type { Logger } from '../log.js'
import { LoaderTimeoutError } from './errors.js'
import type { CacheKind, CacheMetrics } from './metrics.js'
import { pack } from './serializer.js'
import { CacheBypass, type CacheStore, EPOCH_TAG, type ReadResult } from './store.js'

/** How a cached read was answered (the `X-Cache` header): from the cache, filled, stale in grace, or past the cache. */
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
  /** The entry's bytes; with `notModified`, the entry's head (see responses.ts) instead. */
  payload: Buffer
  status: CacheStatus
  /** A fresh entry whose ETag the request's If-None-Match names: the body was not read. */
  notModified?: boolean
  /**
   * With `withDeps`: the tags of the value and the tokens it is valid under (HIT and stored MISS only). A
   * load that reads this value adopts them; undefined means the value cannot be vouched for (STALE, BYPASS,
   * a refused fill), so an entry built from it must not be stored.
   */
  deps?: { tags: readonly string[]; tokens: readonly string[] }
  /** Set when the value did not go through the serializer (BYPASS): the caller may use it as is. */
  value?: unknown
  /**
   * performance.now() at which the value was known current: every write acknowledged before this time is in
   * it. A reader that joins another reader's flight accepts its result only if this is not before its own
   * start (otherwise the flight may have loaded before a write the joiner must see).
   */
  validAt: number
}

/** What a loaded value is stored as: its bytes, and for a response its ETag and head (for a 304). */
export interface Encoded {
  payload: Buffer
  etag?: string
  head?: string
}

const packed = (value: unknown): Encoded => ({ payload: pack(value) })

/** One read through the cache. */
export interface FetchRequest {
  kind: CacheKind
  key: string
  /** Tags known before loading (the epoch tag is added). */
  tags: readonly string[]
  /** Runs on a miss; declares the tags it finds through `deps`. */
  load: (deps: Deps) => Promise<unknown>
  options: FillOptions
  /** How a loaded value becomes the entry (default: the serializer's `pack`, no ETag). */
  encode?: (value: unknown) => Encoded
  /** A response entry: the request's If-None-Match (a fresh entry with that ETag answers `notModified`). */
  ifNoneMatch?: string
  /** Return the entry's tags and tokens (`Fetched.deps`), for a load that reads this one. */
  withDeps?: boolean
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * The tags a load depends on, with the token each had before the data it covers was read. Not storable
 * once a token could not be read, or a nested read could not vouch for its value.
 */
export class Deps {
  readonly tags: string[]
  readonly tokens: string[]
  storable = true
  readonly #store: CacheStore | undefined

  /** Without a store (a load that bypasses the cache) it only runs the loader: nothing is recorded. */
  constructor(store: CacheStore | undefined, tags: readonly string[] = [], tokens: readonly string[] = []) {
    this.#store = store
    this.tags = [...tags]
    this.tokens = [...tokens]
  }

  /** Declares tags found while loading; call it BEFORE reading the data they cover. */
  readonly depend: Depend = async (more) => {
    if (!this.#store) return
    const fresh = withWildcards(more).filter((t) => !this.tags.includes(t))
    if (fresh.length === 0) return
    try {
      const got = await this.#store.tokens(fresh)
      this.tags.push(...fresh)
      this.tokens.push(...got)
    } catch {
      this.storable = false // without the tokens the result cannot be validated later: do not store it
    }
  }

  /**
   * Takes on what a nested cached read was valid under (`Fetched.deps`); undefined (it could not vouch for
   * its value) or a token that differs from one already held (a write between the two reads) makes the
   * load unstorable.
   */
  adopt(deps: Fetched['deps']): void {
    if (!this.#store) return
    if (!deps) {
      this.storable = false
      return
    }
    for (let i = 0; i < deps.tags.length; i++) {
      const at = this.tags.indexOf(deps.tags[i])
      if (at < 0) {
        this.tags.push(deps.tags[i])
        this.tokens.push(deps.tokens[i])
      } else if (this.tokens[at] !== deps.tokens[i]) this.storable = false
    }
  }
}

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

  /** Reads `req.key` through the cache; `req.load` runs on a miss. */
  async fetch(req: FetchRequest): Promise<Fetched> {
    const { kind, key } = req
    const started = performance.now()
    let read: ReadResult
    try {
      read = await this.#store.read(key, this.#now(), req.ifNoneMatch ?? '', req.withDeps === true)
    } catch (err) {
      if (!(err instanceof CacheBypass)) throw err
      this.#metrics.inc('bypass', kind)
      return this.#direct(req.load)
    }
    if (read.kind === 'fresh' || read.kind === 'not-modified') {
      this.#metrics.inc('hits', kind)
      return {
        payload: read.payload,
        status: 'HIT',
        validAt: started,
        notModified: read.kind === 'not-modified',
        deps: read.kind === 'fresh' ? read.deps : undefined,
      }
    }
    const stale = read.kind === 'stale' ? read.payload : undefined
    let flight = this.#flights.get(key)
    let r: Fetched
    if (flight) {
      r = await flight
      // The flight began before this read: its result may predate a write this read must see.
      if (r.validAt < started) r = await this.#fill(req, stale, started)
    } else {
      flight = this.#fill(req, stale, started).finally(() => this.#flights.delete(key))
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
  async prime(req: FetchRequest): Promise<{ value: unknown; stored: boolean }> {
    const all = [EPOCH_TAG, ...req.tags]
    const { tokens } = await this.#store.begin(req.key, all, '', false)
    const loaded = await this.#run(all, tokens, req.load)
    const o = req.options
    const stored = loaded.deps.storable
      ? await this.#store.fill(
          req.key,
          '',
          (req.encode ?? packed)(loaded.value),
          this.#now() + o.ttlMs,
          o.ttlMs + o.graceMs,
          loaded.deps.tags,
          loaded.deps.tokens,
        )
      : false
    this.#countFill(req.kind, stored)
    return { value: loaded.value, stored }
  }

  async #fill(req: FetchRequest, stale: Buffer | undefined, readAt: number): Promise<Fetched> {
    const { kind, key, options: o } = req
    const all = [EPOCH_TAG, ...req.tags]
    const owner = randomBytes(9).toString('base64url')
    let begun: { locked: boolean; filled: boolean; tokens: string[] }
    try {
      begun = await this.#store.begin(key, all, owner)
    } catch (err) {
      if (!(err instanceof CacheBypass)) throw err
      return this.#direct(req.load)
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
          const r = await this.#store.read(key, this.#now(), '', req.withDeps === true)
          if (r.kind === 'fresh') return { payload: r.payload, status: 'HIT', validAt: at, deps: r.deps }
          if (r.kind === 'stale') return { payload: r.payload, status: 'STALE', validAt: at }
          // No result yet: take the lock over if its holder gave up (failed loader, refused fill) and the
          // entry is still absent (checked in the same script, so a fill that just landed is read instead).
          const again = await this.#store.begin(key, all, owner, true)
          if (again.filled) continue
          begun = again
          if (begun.locked) break
        } catch (err) {
          if (!(err instanceof CacheBypass)) throw err
          return this.#direct(req.load)
        }
      }
    }
    return this.#lead(req, all, begun.tokens, begun.locked ? owner : '', stale, readAt)
  }

  async #lead(
    req: FetchRequest,
    tags: readonly string[],
    tokens: readonly string[],
    owner: string,
    stale: Buffer | undefined,
    readAt: number,
  ): Promise<Fetched> {
    const { kind, key, options: o } = req
    const loadAt = performance.now()
    const store = this.#run(tags, tokens, req.load).then(async ({ value, deps }) => {
      const entry = (req.encode ?? packed)(value)
      let stored = false
      const fillAt = performance.now()
      if (deps.storable) {
        stored = await this.#store
          .fill(key, owner, entry, this.#now() + o.ttlMs, o.ttlMs + o.graceMs, deps.tags, deps.tokens)
          .catch(() => false)
      } else if (owner) await this.#store.release(key, owner)
      this.#countFill(kind, stored)
      // Stored: no tag changed from before the load until the fill ran, so the value was current then.
      return {
        payload: entry.payload,
        validAt: stored ? fillAt : loadAt,
        deps: stored ? { tags: deps.tags, tokens: deps.tokens } : undefined,
      }
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
    const racers: Promise<Omit<Fetched, 'status'> | 'soft' | 'hard'>[] = [
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
  async #direct(load: (deps: Deps) => Promise<unknown>): Promise<Fetched> {
    const validAt = performance.now()
    return { payload: Buffer.alloc(0), status: 'BYPASS', value: await load(new Deps(undefined)), validAt }
  }

  /** Runs the loader with the tags (and tokens) known so far; it adds those it finds while it runs. */
  async #run(
    tags: readonly string[],
    tokens: readonly string[],
    load: (deps: Deps) => Promise<unknown>,
  ): Promise<{ value: unknown; deps: Deps }> {
    const deps = new Deps(this.#store, tags, tokens)
    return { value: await load(deps), deps }
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
