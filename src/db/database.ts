/**
 * Fleet's database layer: every query and transaction of the application goes through a Database, so that
 * writes can be observed (the cache invalidates what they touched after COMMIT and before the caller gets
 * its answer) and a lost PostgreSQL becomes a clean 503 instead of a hang.
 */
import type pg from 'pg'
import { DatabaseUnavailableError } from './errors.js'
import type { Pool, PoolClient } from './pool.js'

/** A row as pg returns it: column name to value. */
export type Row = Record<string, unknown>
/** pg's result: `rows`, `rowCount`, `fields`. */
export type QueryResult<R extends Row = Row> = pg.QueryResult<R>

/** What the application may run: plain queries, or queries inside a transaction. */
export interface Queryable {
  query<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>
}

/**
 * Observes writes. `statement` is called for every statement run through the layer (inside the transaction,
 * in order); `committed` after COMMIT succeeded, before the caller's promise resolves. The cache implements it.
 */
export interface WriteObserver {
  /** Returns a token describing what the statement may write (e.g. the tables), collected per transaction. */
  statement(sql: string): Promise<readonly string[]> | readonly string[]
  /**
   * Optional: called inside the transaction, just before COMMIT, when some statement may write; returns more
   * of what was written, as only the database knows it (the cache reads the tags its triggers collected:
   * rows, foreign-key cascades, trigger writes). A single write statement run by `query` is wrapped in a
   * transaction for this.
   */
  beforeCommit?(tx: Queryable): Promise<readonly string[]>
  /** The union of what the transaction's statements wrote; awaited before the write is acknowledged. */
  committed(written: ReadonlySet<string>): Promise<void>
}

/** PostgreSQL error codes (SQLSTATE classes 08, 57P) and Node socket errors that mean "not reachable". */
function isUnavailable(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? ''
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code))
    return true
  const msg = (err as Error | undefined)?.message ?? ''
  return /timeout exceeded when trying to connect|Connection terminated|Query read timeout/i.test(msg)
}

function wrap(err: unknown): unknown {
  return isUnavailable(err) ? new DatabaseUnavailableError({ cause: err }) : err
}

export interface DatabaseOptions {
  /**
   * Longest wait in ms for one query's answer (client-side; 0 or unset: none). When it passes, the query
   * fails with DatabaseUnavailableError and its connection is closed rather than reused.
   */
  queryTimeout?: number
}

/**
 * PostgreSQL for an app (`deps.db`): `query` and `transaction`. Its writes are seen by the cache, which
 * invalidates what they change after the commit.
 * @example await deps.db.transaction(async (tx) => { await tx.query('UPDATE notes SET text = $1 WHERE id = $2', [text, id]) })
 */
export class Database implements Queryable {
  readonly pool: Pool
  #observer: WriteObserver | undefined
  readonly #queryTimeout: number | undefined

  constructor(pool: Pool, observer?: WriteObserver, options: DatabaseOptions = {}) {
    this.pool = pool
    this.#observer = observer
    this.#queryTimeout = options.queryTimeout || undefined
  }

  #config(sql: string, params: readonly unknown[]): pg.QueryConfig {
    // pg reads `query_timeout` from a query's config too; its types only know it on the client's.
    const config: pg.QueryConfig & { query_timeout?: number } = {
      text: sql,
      values: params as unknown[],
      query_timeout: this.#queryTimeout,
    }
    return config
  }

  /** Installs the write observer (the cache does this when it starts). */
  observe(observer: WriteObserver | undefined): void {
    this.#observer = observer
  }

  /** Runs one statement in its own implicit transaction; a write is acknowledged after invalidation. */
  async query<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    const observer = this.#observer
    const written = observer ? new Set(await observer.statement(sql)) : undefined
    if (observer?.beforeCommit && written && written.size > 0) {
      return this.transaction((tx) => tx.query<R>(sql, params))
    }
    let result: QueryResult<R>
    try {
      // On an error (a timeout included) the pool closes the connection instead of reusing it.
      result = await this.pool.query<R>(this.#config(sql, params))
    } catch (err) {
      throw wrap(err)
    }
    if (observer && written && written.size > 0) await observer.committed(written)
    return result
  }

  /**
   * Runs `fn` in a transaction: COMMIT when it resolves, ROLLBACK when it throws. After COMMIT, what the
   * transaction wrote is invalidated before this promise resolves.
   * @example await db.transaction((tx) => tx.query('UPDATE products SET stock = stock - 1 WHERE id = $1', [id]))
   */
  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const observer = this.#observer
    let client: PoolClient
    try {
      client = await this.pool.connect()
    } catch (err) {
      throw wrap(err)
    }
    const written = new Set<string>()
    const config = (sql: string, params: readonly unknown[]) => this.#config(sql, params)
    const tx: Queryable = {
      async query<R extends Row = Row>(sql: string, params: readonly unknown[] = []) {
        if (observer) for (const t of await observer.statement(sql)) written.add(t)
        return client.query<R>(config(sql, params))
      },
    }
    let result: T
    try {
      await client.query(config('BEGIN', []))
      result = await fn(tx)
      if (observer?.beforeCommit && written.size > 0)
        for (const t of await observer.beforeCommit(tx)) written.add(t)
      await client.query(config('COMMIT', []))
    } catch (err) {
      const broken = isUnavailable(err)
      // A broken or hung connection is destroyed (the server rolls back) rather than asked to ROLLBACK,
      // which would wait behind the unanswered query, or handed to the next caller.
      if (!broken) await client.query(config('ROLLBACK', [])).catch(() => {})
      client.release(broken)
      throw wrap(err)
    }
    client.release()
    if (observer && written.size > 0) await observer.committed(written)
    return result
  }
}
