/**
 * Which tables a SQL statement reads and writes, found by PostgreSQL's own parser (libpg-query, WASM) and
 * memoized per statement text. Joins, subqueries, CTEs (their names are not tables), set operations and
 * data-modifying CTEs all count. Names are bare relation names: the schema qualifier is dropped, so two
 * tables of one name in two schemas share a tag (more invalidation, never less).
 */
import { parse } from 'libpg-query'
import { SqlParseError } from './errors.js'

export interface StatementTables {
  /** Every relation named in the statement (tables or views), CTE names excluded. */
  readonly reads: readonly string[]
  /** Relations the statement inserts into, updates, deletes from, merges into, truncates or copies into. */
  readonly writes: readonly string[]
  /** True for a plain SELECT (no locking clause, no INTO, no data-modifying CTE): its result may be cached. */
  readonly cacheable: boolean
}

const WRITE_NODES = ['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'] as const
const MAX_MEMO = 5_000

type Node = Record<string, unknown>

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null
}

function relname(v: unknown): string | undefined {
  if (!isNode(v)) return undefined
  const rv = (isNode(v.RangeVar) ? v.RangeVar : v) as { relname?: unknown }
  return typeof rv.relname === 'string' ? rv.relname : undefined
}

/** Walks the parse tree once, collecting relation names, CTE names and write targets. */
function collect(tree: unknown): StatementTables {
  const names = new Set<string>()
  const ctes = new Set<string>()
  const writes = new Set<string>()
  let cacheable = true
  const stack: unknown[] = [tree]
  let topLevel = 0
  while (stack.length > 0) {
    const v = stack.pop()
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x)
      continue
    }
    if (!isNode(v)) continue
    for (const [key, child] of Object.entries(v)) {
      if (key === 'RangeVar') {
        const n = relname(child)
        if (n) names.add(n)
      } else if (key === 'CommonTableExpr' && isNode(child) && typeof child.ctename === 'string') {
        ctes.add(child.ctename)
      } else if ((WRITE_NODES as readonly string[]).includes(key) && isNode(child)) {
        const n = relname(child.relation)
        if (n) writes.add(n)
        cacheable = false
      } else if (key === 'TruncateStmt' && isNode(child) && Array.isArray(child.relations)) {
        for (const r of child.relations) {
          const n = relname(r)
          if (n) writes.add(n)
        }
        cacheable = false
      } else if (key === 'CopyStmt' && isNode(child)) {
        const n = relname(child.relation)
        if (n && child.is_from === true) writes.add(n)
        cacheable = false
      } else if (key === 'SelectStmt' && isNode(child)) {
        if (child.intoClause) {
          const n = relname((child.intoClause as Node).rel)
          if (n) writes.add(n)
          cacheable = false
        }
        if (child.lockingClause) cacheable = false
      } else if (key === 'stmt' && isNode(child)) {
        topLevel++
        const kind = Object.keys(child)[0]
        if (kind !== 'SelectStmt') cacheable = false
      }
      if (isNode(child)) stack.push(child)
    }
  }
  if (topLevel !== 1) cacheable = false
  const reads = [...names].filter((n) => !ctes.has(n) || writes.has(n)).sort()
  return { reads, writes: [...writes].sort(), cacheable }
}

/** Parses statements and remembers the answer per text (bounded: the oldest texts are forgotten first). */
export class SqlTables {
  readonly #memo = new Map<string, Promise<StatementTables>>()

  /** The tables `sql` reads and writes. Rejects with SqlParseError when the text is not valid SQL. */
  of(sql: string): Promise<StatementTables> {
    const hit = this.#memo.get(sql)
    if (hit) return hit
    const p = parse(sql).then(
      (tree) => collect(tree),
      (err: unknown) => {
        this.#memo.delete(sql)
        throw new SqlParseError(sql, { cause: err })
      },
    )
    if (this.#memo.size >= MAX_MEMO) {
      const oldest = this.#memo.keys().next().value
      if (oldest !== undefined) this.#memo.delete(oldest)
    }
    this.#memo.set(sql, p)
    return p
  }
}
