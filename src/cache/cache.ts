/**
 * Fleet's cache: cached queries and cached objects in the cache Redis, validated by generation tokens.
 * See docs/cache.md for the guarantees and how to add a cached query or class.
 */
import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Registry } from 'prom-client'
import type { Config } from '../config/index.js'
import type { Database, Queryable, QueryResult, Row } from '../db/database.js'
import type { Logger } from '../log.js'
import type { Redis } from '../redis/connect.js'
import { Breaker } from './breaker.js'
import type { CachedQuery } from './cached-query.js'
import { Catalog } from './catalog.js'
import { InvalidTagError } from './errors.js'
import {
  type CacheStatus,
  type Depend,
  Deps,
  type Encoded,
  Filler,
  type FillOptions,
  withWildcards,
} from './fill.js'
import { NotifyListener, OwnWrites, WriteInvalidator } from './invalidator.js'
import { type CacheKind, CacheMetrics } from './metrics.js'
import {
  type BuildContext,
  encodeResponse,
  type ResponseSpec,
  responseKey,
  sendNotModified,
  sendResponse,
} from './responses.js'
import { type AnyClass, isRegistered, pack, RowSet, registerClass, unpack } from './serializer.js'
import { SqlTables } from './sql-tables.js'
import { CacheStore, EPOCH_TAG } from './store.js'

export type { CacheStatus, Depend }

export type CacheConfig = Pick<
  Config,
  | 'cacheEnabled'
  | 'cacheTtl'
  | 'cacheGrace'
  | 'cacheSoftTimeout'
  | 'cacheHardTimeout'
  | 'cacheLockTtl'
  | 'cacheLockWait'
  | 'cacheBreakerThreshold'
  | 'cacheBreakerCooldown'
  | 'cacheTokenTtl'
  | 'cacheInstallTriggers'
  | 'redisPrefix'
  | 'dbSchema'
  | 'databaseUrl'
>

export interface CacheDeps {
  /** The cache Redis: connectRedis(url, { failFast: true, extra: { commandTimeout } }). Not closed by close(). */
  redis: Redis
  /** The database layer; the cache installs its write observer on it. */
  db: Database
  config: CacheConfig
  logger?: Logger
  /** Prometheus registry for the cache's metrics (a private one when omitted). */
  metrics?: Registry
  /** LISTEN for invalidations announced by PostgreSQL triggers (default true; needs config.databaseUrl). */
  listen?: boolean
  /** Injectable clock (ms since epoch). */
  now?: () => number
}

/** Per-call options of a cached query or class. Durations in ms. */
export interface CacheOptions {
  ttl?: number
  grace?: number
  /** Extra tags, e.g. entities the query reads by id (`products:42`) so an exact invalidation reaches it. */
  tags?: readonly string[]
}

/**
 * How a class is cached. `tags(id)` are known before loading (its own row, e.g. `products:42`); tags found
 * while assembling (e.g. the product's category) are declared with `ctx.depend` BEFORE the query that reads
 * them, so their tokens are captured before the data.
 */
export interface ObjectSpec<T extends object, I> {
  /** Stable name of the class in the cache (stored with each instance). */
  readonly name: string
  key(id: I): string
  tags(id: I): readonly string[]
  assemble(ctx: AssembleContext, id: I): Promise<T>
  readonly ttl?: number
  readonly grace?: number
  /** Other classes nested in an instance (registered with the serializer too). */
  readonly nested?: readonly AnyClass[]
}

/**
 * What a cached class's `assemble` reads with: `db.query` (reads only; its tables become the object's tags)
 * and the cache itself for nested cached reads.
 * @example static cache = { name: 'shop.Card', key: (id: number) => String(id), async assemble({ db }: AssembleContext, id: number) { ... } }
 */
export interface AssembleContext {
  db: Pick<Database, 'query'>
  depend: Depend
}

/** A class with a static `cache` spec. */
export type CachedClass<T extends object, I> = AnyClass<T> & { readonly cache: ObjectSpec<T, I> }

export interface CacheStats {
  breaker: string
  dirty: boolean
  listening: boolean
  /** `<run_id>/<master_replid>` of the cache Redis as last checked (docs/cache.md, "Failover"). */
  history: string | undefined
  /** Counters kept in the cache Redis by the scripts, across every process. */
  redis: Record<string, number>
}

const NO_TAGS: readonly string[] = Object.freeze([])

/** How often each process checks the cache Redis's replication history in the background (history.ts). */
const HISTORY_CHECK_MS = 1_000

function checkTags(tags: readonly string[]): void {
  for (const t of tags) if (!/^\S{1,200}$/.test(t)) throw new InvalidTagError(t)
}

/**
 * The cache of a process (`deps.cache`): cached queries (`run`), cached objects (`get`), cached responses
 * (`respond`), all in the cache Redis and invalidated by the writes made through `deps.db`.
 * @example const { rows, status } = await deps.cache.run(latestNotes, [])
 */
export class Cache {
  readonly metrics: CacheMetrics
  readonly #d: CacheDeps
  readonly #store: CacheStore
  readonly #filler: Filler
  readonly #sql = new SqlTables()
  readonly #catalog: Catalog
  readonly #listener: NotifyListener | undefined
  readonly #now: () => number
  readonly #breaker: Breaker
  #statsTimer: NodeJS.Timeout | undefined
  readonly #plans = new Map<string, { tags: string[]; id: string } | null>()
  #catalogAt = 0
  #closing: Promise<void> | undefined

  constructor(deps: CacheDeps) {
    this.#d = deps
    this.#now = deps.now ?? Date.now
    this.metrics = new CacheMetrics(deps.metrics)
    const c = deps.config
    const breaker = new Breaker({
      threshold: c.cacheBreakerThreshold,
      cooldownMs: c.cacheBreakerCooldown,
      onChange: (s) => {
        this.metrics.breakerChanged(s)
        deps.logger?.info({ state: s }, 'cache breaker')
      },
    })
    this.#breaker = breaker
    this.#store = new CacheStore(deps.redis, {
      prefix: c.redisPrefix,
      tokenTtlMs: c.cacheTokenTtl,
      lockTtlMs: c.cacheLockTtl,
      breaker,
      onNewHistory: (history, previous) =>
        previous === undefined
          ? deps.logger?.info(
              { history },
              'cache Redis on a history the cache had not recorded: epoch replaced, every older entry is a miss',
            )
          : deps.logger?.warn(
              { history, previous },
              'cache Redis on a new replication history (failover or restart): epoch replaced, every older entry is a miss',
            ),
      onNoScriptFlags: (major) =>
        deps.logger?.warn(
          { redisMajorVersion: major },
          'cache Redis older than 7.0: its scripts run without flags, so a connection left on a demoted primary is not refused (docs/cache.md, "Failover")',
        ),
    })
    this.#filler = new Filler(this.#store, this.metrics, deps.logger, this.#now)
    this.#catalog = new Catalog(deps.db.pool, c.dbSchema)
    const invalidatorDeps = {
      sqlTables: this.#sql,
      catalog: this.#catalog,
      bump: (tags: readonly string[], source: 'write' | 'notify') => this.#bump(tags, source),
      logger: deps.logger,
      own: new OwnWrites(),
    }
    deps.db.observe(new WriteInvalidator(invalidatorDeps))
    if (deps.listen !== false && c.databaseUrl) {
      this.#listener = new NotifyListener(c.databaseUrl, c.dbSchema, invalidatorDeps, () =>
        this.#store.markDirty(),
      )
    }
  }

  /** Installs triggers (when configured), loads the catalog and starts listening. */
  async start(): Promise<void> {
    this.#statsTimer = setInterval(() => void this.#store.flushCounts(), 5_000)
    this.#statsTimer.unref()
    this.#store.watchHistory(HISTORY_CHECK_MS)
    if (this.#d.config.cacheInstallTriggers) await this.#catalog.installTriggers()
    await this.#catalog.refresh()
    this.#catalogAt = this.#now()
    await this.#listener?.start()
  }

  /** Fill options of a declaration (a class's or a response's spec), made once per declaration. */
  readonly #specOptions = new WeakMap<object, FillOptions>()

  #optionsOf(spec: { ttl?: number; grace?: number }): FillOptions {
    let o = this.#specOptions.get(spec)
    if (!o) {
      o = this.#options(spec)
      this.#specOptions.set(spec, o)
    }
    return o
  }

  #options(o: { ttl?: number; grace?: number } | undefined): FillOptions {
    const c = this.#d.config
    return {
      ttlMs: o?.ttl ?? c.cacheTtl,
      graceMs: o?.grace ?? c.cacheGrace,
      softTimeoutMs: c.cacheSoftTimeout,
      hardTimeoutMs: c.cacheHardTimeout,
      lockWaitMs: c.cacheLockWait,
    }
  }

  async #bump(tags: readonly string[], source: 'write' | 'notify' | 'api'): Promise<void> {
    if (tags.length === 0) return
    await this.#store.bump(tags)
    this.metrics.invalidations.inc({ source }, tags.length)
  }

  #bypass(kind: CacheKind): void {
    this.metrics.inc('bypass', kind)
  }

  /**
   * Runs a parameterized SELECT through the cache: its tags are the base tables it reads (views resolved).
   * A statement that is not a plain SELECT, or reads no table, runs on PostgreSQL (BYPASS).
   * @example const { rows, status } = await cache.query('SELECT * FROM products WHERE category_id = $1', [3])
   */
  async query<R extends Row = Row>(
    sql: string,
    params: readonly unknown[] = [],
    options?: CacheOptions,
  ): Promise<{ rows: R[]; status: CacheStatus }> {
    return this.#query<R>(sql, params, options, undefined)
  }

  /** `query`, for a load that builds on it when `outer` is given (it takes on the result's tags and tokens). */
  async #query<R extends Row>(
    sql: string,
    params: readonly unknown[],
    options: CacheOptions | undefined,
    outer: Deps | undefined,
  ): Promise<{ rows: R[]; status: CacheStatus }> {
    const db = this.#d.db
    const direct = async () => {
      outer?.adopt(undefined) // nothing vouches for rows read around the cache
      return { rows: (await db.query<R>(sql, params)).rows, status: 'BYPASS' as const }
    }
    if (!this.#d.config.cacheEnabled) {
      this.#bypass('query')
      return direct()
    }
    let plan = this.#plans.get(sql)
    if (plan === undefined) plan = await this.#plan(sql)
    if (plan === null) {
      this.#bypass('query')
      return direct()
    }
    const tags = options?.tags ? [...plan.tags, ...withWildcards(options.tags)] : plan.tags
    if (options?.tags) checkTags(tags)
    const packed = pack(params)
    const key = `q:${plan.id}:${packed.length <= 64 ? `v${packed.toString('base64url')}` : `h${createHash('sha256').update(packed).digest('base64url')}`}`
    const r = await this.#filler.fetch({
      kind: 'query',
      key,
      tags,
      load: async () => new RowSet((await db.query<R>(sql, params)).rows),
      options: this.#options(options),
      withDeps: outer !== undefined,
    })
    outer?.adopt(r.deps)
    const rows = r.value !== undefined ? ((r.value as RowSet).rows as R[]) : unpack<R[]>(r.payload)
    return { rows, status: r.status }
  }

  /**
   * Runs a declared cached query (see `defineQuery`) through the query cache.
   * @example const { rows, status } = await cache.run(greetingsByLang, ['en'])
   */
  async run<R extends Row, P extends readonly unknown[]>(
    query: CachedQuery<R, P>,
    params: P,
  ): Promise<{ rows: R[]; status: CacheStatus }> {
    return this.query<R>(query.sql, params, {
      ttl: query.ttl,
      grace: query.grace,
      tags: query.tags?.(params),
    })
  }

  /**
   * Why `sql` would not go through the query cache (undefined: it would): not valid SQL, not one plain
   * SELECT, no table read, or a relation the database does not have. Applications' queries are checked with
   * it at start.
   */
  async whyNotCacheable(sql: string): Promise<string | undefined> {
    let parsed: Awaited<ReturnType<SqlTables['of']>>
    try {
      parsed = await this.#sql.of(sql)
    } catch (err) {
      return (err as Error).message
    }
    if (!parsed.cacheable) return 'it is not one plain SELECT (no writes, locks or several statements)'
    if (parsed.reads.length === 0) return 'it reads no table, so no write could invalidate it'
    // The catalog loaded at start, after the migrations; reload it only for a relation it does not know.
    if (parsed.reads.some((n) => !this.#catalog.knows(n))) {
      await this.#catalog.refresh()
      this.#catalogAt = this.#now()
      this.#plans.clear()
    }
    const unknown = parsed.reads.filter((n) => !this.#catalog.knows(n))
    if (unknown.length > 0)
      return `it reads ${unknown.join(', ')}, which the schema ${this.#d.config.dbSchema} does not have (a migration missing?)`
    return undefined
  }

  /**
   * What a statement text means for the cache, memoized: null (run it on PostgreSQL) or its tags and id.
   * Forgotten when the catalog reloads (a view may have appeared).
   */
  async #plan(sql: string): Promise<{ tags: string[]; id: string } | null> {
    const parsed = await this.#sql.of(sql)
    if (!parsed.cacheable || parsed.reads.length === 0) return this.#remember(sql, null)
    if (parsed.reads.some((n) => !this.#catalog.knows(n)) && this.#now() - this.#catalogAt > 1_000) {
      this.#catalogAt = this.#now()
      await this.#catalog.refresh().catch(() => {})
      this.#plans.clear()
    }
    // A relation the catalog does not know could be a view we cannot resolve: bypass, and do not remember.
    if (parsed.reads.some((n) => !this.#catalog.knows(n))) return null
    const tags = this.#catalog.baseTables(parsed.reads)
    checkTags(tags)
    const id = createHash('sha256').update(sql).digest('base64url').slice(0, 22)
    return this.#remember(sql, { tags, id })
  }

  #remember<P>(sql: string, plan: P): P {
    if (this.#plans.size >= 5_000) this.#plans.clear()
    this.#plans.set(sql, plan as never)
    return plan
  }

  /**
   * A Queryable whose SELECTs go through the query cache (writes and uncacheable statements go to the
   * database layer), for code written against `Queryable` (an app's data-access functions). `status()`
   * is the least cached status of the reads made so far (the X-Cache of a response built from them).
   * @example const r = cache.reader(); const items = await listCategories(r.db); reply.header('x-cache', r.status())
   */
  reader(): { db: Queryable; status(): CacheStatus } {
    let worst: CacheStatus = 'HIT'
    const db: Queryable = {
      query: async <R extends Row = Row>(sql: string, params: readonly unknown[] = []) => {
        const r = await this.query<R>(sql, params)
        worst = worstStatus(worst, r.status)
        return {
          rows: r.rows,
          rowCount: r.rows.length,
          command: 'SELECT',
          oid: 0,
          fields: [],
        } as QueryResult<R>
      },
    }
    return { db, status: () => worst }
  }

  #register<T extends object, I>(Class: CachedClass<T, I>): ObjectSpec<T, I> {
    const spec = Class.cache
    if (!isRegistered(Class)) registerClass(Class, spec.name)
    for (const n of spec.nested ?? []) if (!isRegistered(n)) registerClass(n)
    return spec
  }

  #objectLoad<T extends object, I>(spec: ObjectSpec<T, I>, id: I) {
    return (deps: Deps) => spec.assemble({ db: this.#d.db, depend: deps.depend }, id)
  }

  /**
   * Reads an instance of a cached class: an instance of `Class` (prototype, Dates, Maps... intact).
   * @example const { value: page, status } = await cache.get(ProductPage, 42)
   */
  async get<T extends object, I>(
    Class: CachedClass<T, I>,
    id: I,
  ): Promise<{ value: T; status: CacheStatus }> {
    return this.#get(Class, id, undefined)
  }

  /** `get`, for a load that builds on it when `outer` is given (it takes on the instance's tags and tokens). */
  async #get<T extends object, I>(
    Class: CachedClass<T, I>,
    id: I,
    outer: Deps | undefined,
  ): Promise<{ value: T; status: CacheStatus }> {
    const spec = this.#register(Class)
    if (!this.#d.config.cacheEnabled) {
      this.#bypass('object')
      outer?.adopt(undefined)
      return { value: await spec.assemble({ db: this.#d.db, depend: async () => {} }, id), status: 'BYPASS' }
    }
    const tags = withWildcards(spec.tags(id))
    checkTags(tags)
    const r = await this.#filler.fetch({
      kind: 'object',
      key: `o:${spec.name}:${spec.key(id)}`,
      tags,
      load: this.#objectLoad(spec, id),
      options: this.#optionsOf(spec),
      withDeps: outer !== undefined,
    })
    outer?.adopt(r.deps)
    return { value: r.value !== undefined ? (r.value as T) : unpack<T>(r.payload), status: r.status }
  }

  /**
   * Answers a request from a cached response: one round trip on a hit, the stored bytes written as they are
   * (a 304 when If-None-Match names the ETag), `X-Cache` set. On a miss the response is built from cached
   * objects and queries (see `defineResponse`) and stored under every tag they were built from.
   * @example app.get('/api/products/:id', (request, reply) => deps.cache.respond(request, reply, productPage, request.params.id))
   */
  async respond<I>(
    request: FastifyRequest,
    reply: FastifyReply,
    spec: ResponseSpec<I>,
    input: I,
  ): Promise<void> {
    if (!this.#d.config.cacheEnabled) {
      this.#bypass('response')
      const built = await this.#build(spec, input, new Deps(undefined))
      sendResponse(request, reply, built.payload, 'BYPASS')
      return
    }
    const tags = this.#responseTags(spec, input)
    const inm = request.headers['if-none-match']
    const r = await this.#filler.fetch({
      kind: 'response',
      key: responseKey(spec, input),
      tags,
      load: (deps) => this.#build(spec, input, deps),
      options: this.#optionsOf(spec),
      encode: (built) => built as Encoded,
      ifNoneMatch: typeof inm === 'string' ? inm : undefined,
    })
    if (r.notModified) sendNotModified(reply, r.payload.toString('latin1'), r.status)
    else {
      const payload = r.value !== undefined ? (r.value as Encoded).payload : r.payload
      sendResponse(request, reply, payload, r.status)
    }
  }

  /**
   * Builds a response and stores it ahead of time (workers), whatever is cached; conditional like any fill.
   * @example await cache.primeResponse(productPage, 42)
   */
  async primeResponse<I>(spec: ResponseSpec<I>, input: I): Promise<{ stored: boolean }> {
    const { stored } = await this.#filler.prime({
      kind: 'response',
      key: responseKey(spec, input),
      tags: this.#responseTags(spec, input),
      load: (deps) => this.#build(spec, input, deps),
      options: this.#optionsOf(spec),
      encode: (built) => built as Encoded,
    })
    return { stored }
  }

  /** The tags a response declares before it is built (most declare none: their reads bring theirs). */
  #responseTags<I>(spec: ResponseSpec<I>, input: I): readonly string[] {
    if (!spec.tags) return NO_TAGS
    const tags = withWildcards(spec.tags(input))
    checkTags(tags)
    return tags
  }

  /** Builds a response with reads that hand their tags and tokens to `deps`; returns the encoded entry. */
  async #build<I>(spec: ResponseSpec<I>, input: I, deps: Deps) {
    const ctx: BuildContext = {
      get: async (Class, id) => (await this.#get(Class, id, deps)).value,
      db: this.#d.db,
      reader: {
        query: async <R extends Row = Row>(sql: string, params: readonly unknown[] = []) => {
          const rows = (await this.#query<R>(sql, params, undefined, deps)).rows
          return { rows, rowCount: rows.length, command: 'SELECT', oid: 0, fields: [] } as QueryResult<R>
        },
      },
      run: async <R extends Row, P extends readonly unknown[]>(query: CachedQuery<R, P>, params: P) => {
        const o = { ttl: query.ttl, grace: query.grace, tags: query.tags?.(params) }
        return (await this.#query<R>(query.sql, params, o, deps)).rows
      },
      depend: deps.depend,
    }
    return encodeResponse(spec.name, await spec.build(ctx, input))
  }

  /**
   * Assembles an instance and stores it ahead of time (workers), whatever is cached. Like any fill, it is
   * not stored when one of its tags is invalidated while it is assembled (`stored: false`).
   */
  async prime<T extends object, I>(Class: CachedClass<T, I>, id: I): Promise<{ value: T; stored: boolean }> {
    const spec = this.#register(Class)
    const tags = withWildcards(spec.tags(id))
    checkTags(tags)
    const r = await this.#filler.prime({
      kind: 'object',
      key: `o:${spec.name}:${spec.key(id)}`,
      tags,
      load: this.#objectLoad(spec, id),
      options: this.#optionsOf(spec),
    })
    return { value: r.value as T, stored: r.stored }
  }

  /** Replaces the tokens of `tags`: every entry built from one of them becomes a miss. */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    checkTags(tags)
    await this.#bump(tags, 'api')
  }

  /** Invalidates everything (the epoch tag), or one tag. */
  async flush(tag?: string): Promise<void> {
    await this.invalidateTags([tag ?? EPOCH_TAG])
  }

  async stats(): Promise<CacheStats> {
    await this.#store.flushCounts()
    const raw = await this.#d.redis.hgetall(this.#store.statsKey).catch(() => ({}) as Record<string, string>)
    const redis: Record<string, number> = {}
    for (const [k, v] of Object.entries(raw)) redis[k] = Number(v)
    return {
      breaker: this.#breaker.state,
      dirty: this.#store.dirty,
      listening: this.#listener?.listening ?? false,
      history: this.#store.history,
      redis,
    }
  }

  /** The classes that a cache name belongs to, registered with the serializer (an application's, at start). */
  register(classes: readonly CachedClass<object, never>[]): void {
    for (const Class of classes) this.#register(Class)
  }

  /**
   * Stops listening and waits for background fills; leaves the Redis connection and the pool to their owner.
   * Idempotent: a second call waits for the first.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#d.db.observe(undefined)
    clearInterval(this.#statsTimer)
    await this.#store.flushCounts()
    await this.#listener?.close()
    await this.#filler.settle()
    this.#store.close()
  }
}

/**
 * Creates the cache and starts it (triggers, catalog, LISTEN).
 * @example const cache = await createCache({ redis: cacheRedis, db, config, logger, metrics: registry })
 */
export async function createCache(deps: CacheDeps): Promise<Cache> {
  const cache = new Cache(deps)
  await cache.start()
  return cache
}

const ORDER: Record<CacheStatus, number> = { HIT: 0, STALE: 1, MISS: 2, BYPASS: 3 }

/** The X-Cache value of a response built from several reads: the least cached of them. */
export function worstStatus(...statuses: CacheStatus[]): CacheStatus {
  return statuses.reduce((a, b) => (ORDER[b] > ORDER[a] ? b : a), 'HIT' as CacheStatus)
}
