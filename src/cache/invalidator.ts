/**
 * Turns writes into invalidations, by two paths:
 * 1. Fleet's own writes (the WriteObserver of src/db/database.ts): the parser names the tables each statement
 *    writes; before COMMIT the tags the triggers collected (`fleet.cache_tags`: rows, cascades, trigger writes)
 *    are read on the same connection; after COMMIT and before the caller's promise resolves, their tokens are
 *    replaced. A table without the triggers is invalidated wholesale (`<table>` and `<table>:*`).
 * 2. Writes made outside Fleet: the triggers pg_notify the same tags; a LISTEN connection in every process
 *    replaces their tokens (well within a second). The NOTIFY carries the txid: the echo of this process's
 *    own write, already bumped by path 1, is skipped (see OwnWrites); other processes apply it too.
 *    Whenever that connection is (re)established, notifications may have been missed, so the epoch token is
 *    replaced (the whole cache becomes a miss once). A bump that fails marks the store dirty (see store.ts).
 */
import pg from 'pg'
import type { Queryable, WriteObserver } from '../db/database.js'
import type { Logger } from '../log.js'
import type { Catalog } from './catalog.js'
import { NOTIFY_CHANNEL } from './catalog.js'
import type { SqlTables } from './sql-tables.js'
import { EPOCH_TAG } from './store.js'

export interface InvalidatorDeps {
  sqlTables: SqlTables
  catalog: Catalog
  /** Replaces the tokens of `tags`; rejects when the cache Redis is unreachable. */
  bump: (tags: readonly string[], source: 'write' | 'notify') => Promise<void>
  logger?: Logger
  /** This process's own transactions, whose NOTIFY echo the write path already covered. */
  own: OwnWrites
}

/**
 * Transactions this process wrote, by txid: registered before COMMIT, settled after the write-path bump.
 * The echo of a settled transaction is skipped (tokens live in the shared Redis: one bump is enough); the
 * echo of one whose acknowledgement never came (COMMIT failed ambiguously, bump failed) is applied.
 */
export class OwnWrites {
  readonly #pending = new Map<string, { at: number; done: Promise<boolean>; settle: (ok: boolean) => void }>()

  register(txid: string): void {
    const now = Date.now()
    for (const [k, v] of this.#pending) if (now - v.at > 60_000) this.#pending.delete(k)
    let settle: (ok: boolean) => void = () => {}
    const done = new Promise<boolean>((r) => {
      settle = r
    })
    this.#pending.set(txid, { at: now, done, settle })
  }

  settle(txid: string, bumped: boolean): void {
    this.#pending.get(txid)?.settle(bumped)
  }

  /** Whether the echo of `txid` needs no bump: waits (at most 500 ms) for the write path to settle it. */
  async covered(txid: string): Promise<boolean> {
    const p = this.#pending.get(txid)
    if (!p) return false
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<boolean>((r) => {
      timer = setTimeout(() => r(false), 500)
    })
    try {
      return await Promise.race([p.done, late])
    } finally {
      clearTimeout(timer)
    }
  }
}

/** The WriteObserver the cache installs on Database. */
export class WriteInvalidator implements WriteObserver {
  readonly #d: InvalidatorDeps
  constructor(deps: InvalidatorDeps) {
    this.#d = deps
  }

  async statement(sql: string): Promise<readonly string[]> {
    try {
      return (await this.#d.sqlTables.of(sql)).writes
    } catch {
      return [] // not valid SQL: PostgreSQL will refuse it with a better message
    }
  }

  async beforeCommit(tx: Queryable): Promise<readonly string[]> {
    const r = await tx.query<{ tags: string | null; txid: string }>(
      `SELECT current_setting('fleet.cache_tags', true) AS tags, txid_current()::text AS txid`,
    )
    const txid = r.rows[0]?.txid
    if (txid) this.#d.own.register(txid)
    // The txid travels to committed() inside `written`, marked by '@' (no tag starts with it).
    return [...(r.rows[0]?.tags ?? '').split(' ').filter(Boolean), ...(txid ? [`@${txid}`] : [])]
  }

  async committed(written: ReadonlySet<string>): Promise<void> {
    const tags = new Set<string>()
    const txids: string[] = []
    for (const w of written) {
      if (w.startsWith('@')) {
        txids.push(w.slice(1))
        continue
      }
      if (w.includes(':')) {
        tags.add(w)
        continue
      }
      for (const table of this.#d.catalog.baseTables([w])) {
        tags.add(table)
        if (!this.#d.catalog.hasTriggers(table)) tags.add(`${table}:*`)
      }
    }
    try {
      await this.#d.bump([...tags], 'write')
      for (const t of txids) this.#d.own.settle(t, true)
    } catch (err) {
      for (const t of txids) this.#d.own.settle(t, false)
      // The write is committed and cannot be undone; the store is now dirty, so no entry older than this
      // write is served by this process until the epoch token is replaced.
      this.#d.logger?.warn(
        { err, tags: [...tags] },
        'cache invalidation failed; cache bypassed until Redis returns',
      )
    }
  }
}

/** Keeps one LISTEN connection per process and bumps what the triggers announce. */
export class NotifyListener {
  readonly #url: string
  readonly #schema: string
  readonly #d: InvalidatorDeps
  readonly #onGap: () => void
  #client: pg.Client | undefined
  #closed = false
  #retry: NodeJS.Timeout | undefined
  #attempt = 0

  constructor(url: string, schema: string, deps: InvalidatorDeps, onGap: () => void) {
    this.#url = url
    this.#schema = schema
    this.#d = deps
    this.#onGap = onGap
  }

  /** Connects and LISTENs; resolves once listening (or rejects when PostgreSQL cannot be reached). */
  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url, application_name: 'fleet-cache-listen' })
    client.on('error', () => {})
    client.on('end', () => this.#lost())
    client.on('notification', (msg) => {
      if (msg.channel !== NOTIFY_CHANNEL || !msg.payload) return
      const [schema, ...words] = msg.payload.split(' ')
      if (schema !== this.#schema) return
      const txid = words[0]?.startsWith('@') ? words.shift()?.slice(1) : undefined
      const tags = words.filter(Boolean)
      if (tags.length === 0) return
      void (txid ? this.#d.own.covered(txid) : Promise.resolve(false)).then((covered) => {
        if (!covered) this.#d.bump(tags, 'notify').catch(() => this.#onGap())
      })
    })
    await client.connect()
    await client.query(`LISTEN ${NOTIFY_CHANNEL}`)
    this.#client = client
    this.#attempt = 0
    // Notifications sent while nobody listened are gone: invalidate everything once.
    await this.#d.bump([EPOCH_TAG], 'notify').catch(() => this.#onGap())
  }

  #lost(): void {
    this.#client = undefined
    if (this.#closed) return
    // Not dirty yet: while PostgreSQL is away nothing is written (and stale reads inside the grace period
    // must keep working); the epoch is replaced when the connection is back, before anything else.
    this.#schedule()
  }

  #schedule(): void {
    if (this.#closed || this.#retry) return
    const delay = Math.min(100 * 2 ** this.#attempt++, 2_000)
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      this.start().catch(() => this.#schedule())
    }, delay)
  }

  get listening(): boolean {
    return this.#client !== undefined
  }

  async close(): Promise<void> {
    this.#closed = true
    if (this.#retry) clearTimeout(this.#retry)
    const c = this.#client
    this.#client = undefined
    await c?.end().catch(() => {})
  }
}
