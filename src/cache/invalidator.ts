/**
 * Turns writes into invalidations, by two paths:
 * 1. Fleet's own writes (the WriteObserver of src/db/database.ts): the parser names the tables each statement
 *    writes; before COMMIT the tags the triggers collected (`fleet.cache_tags`: rows, cascades, trigger writes)
 *    are read on the same connection; after COMMIT and before the caller's promise resolves, their tokens are
 *    replaced. A table without the triggers is invalidated wholesale (`<table>` and `<table>:*`).
 * 2. Writes made outside Fleet: the triggers pg_notify the same tags; a LISTEN connection in every process
 *    replaces their tokens (well within a second). Whenever that connection is (re)established, notifications
 *    may have been missed, so the epoch token is replaced (the whole cache becomes a miss once). A bump that
 *    fails marks the store dirty (see store.ts).
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
    const r = await tx.query<{ tags: string | null }>(
      `SELECT current_setting('fleet.cache_tags', true) AS tags`,
    )
    return (r.rows[0]?.tags ?? '').split(' ').filter(Boolean)
  }

  async committed(written: ReadonlySet<string>): Promise<void> {
    const tags = new Set<string>()
    for (const w of written) {
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
    } catch (err) {
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
      const [schema, ...tags] = msg.payload.split(' ')
      if (schema !== this.#schema || tags.length === 0) return
      this.#d.bump(tags, 'notify').catch(() => this.#onGap())
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
