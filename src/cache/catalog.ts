/**
 * What the cache needs to know about the schema: which relations are views (a read of a view depends on its
 * base tables, found through pg_rewrite/pg_depend, views of views included), which tables carry the
 * invalidation triggers, and the SQL that installs those triggers.
 *
 * The triggers (statement level, AFTER INSERT/UPDATE/DELETE/TRUNCATE) compute the tags a statement touched
 * from its transition tables (old and new rows): the table itself, `<table>:<primary key>` of each row, and
 * `<table>.<column>:<value>` of each single-column foreign key (so a new review of product 42 tags
 * `reviews.product_id:42`, which the product page depends on). More than 100 distinct values of one column
 * become `<tag prefix>:*`; TRUNCATE gives every `<tag prefix>:*`. Since PostgreSQL fires
 * them for rows changed by foreign-key cascades and by other triggers too, those writes are captured exactly.
 * Each trigger appends its tags to the transaction-local setting `fleet.cache_tags` (read before COMMIT by
 * Fleet's database layer) and sends them with pg_notify('fleet_cache', '<schema> @<txid> <tags...>') for writes
 * made outside Fleet (the txid lets the writing process skip the echo of its own, already invalidated, write).
 */
import type { Pool } from '../db/pool.js'

export const NOTIFY_CHANNEL = 'fleet_cache'
/** Marker inside the capture function's source: an older function (without it) is replaced at start. */
const FUNCTION_VERSION = 'fleet_cache_capture v2'

const FUNCTION_SQL = `
CREATE OR REPLACE FUNCTION fleet_cache_capture() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  tags text[] := ARRAY[TG_TABLE_NAME];
  wide text[] := ARRAY[TG_TABLE_NAME || ':*'];
  srcs text[];
  src text;
  vals text[];
  i int;
  payload text;
BEGIN
  i := 0;
  WHILE i < TG_NARGS LOOP
    wide := wide || (TG_ARGV[i + 1] || ':*');
    i := i + 2;
  END LOOP;
  IF TG_OP = 'TRUNCATE' THEN
    tags := tags || wide;
  ELSE
    srcs := CASE TG_OP WHEN 'INSERT' THEN ARRAY['fleet_new'] WHEN 'DELETE' THEN ARRAY['fleet_old']
            ELSE ARRAY['fleet_old', 'fleet_new'] END;
    FOREACH src IN ARRAY srcs LOOP
      i := 0;
      WHILE i < TG_NARGS LOOP
        EXECUTE format('SELECT array_agg(%L || '':'' || v) FROM (SELECT DISTINCT %I::text AS v FROM %I WHERE %I IS NOT NULL LIMIT 101) s',
                       TG_ARGV[i + 1], TG_ARGV[i], src, TG_ARGV[i]) INTO vals;
        IF cardinality(vals) > 100 THEN
          tags := tags || (TG_ARGV[i + 1] || ':*');
        ELSIF vals IS NOT NULL THEN
          tags := tags || vals;
        END IF;
        i := i + 2;
      END LOOP;
    END LOOP;
  END IF;
  payload := array_to_string(ARRAY(SELECT DISTINCT unnest(tags)), ' ');
  IF length(payload) > 7000 THEN
    payload := array_to_string(ARRAY(SELECT DISTINCT unnest(wide)), ' ') || ' ' || TG_TABLE_NAME;
  END IF;
  PERFORM set_config('fleet.cache_tags', coalesce(current_setting('fleet.cache_tags', true), '') || ' ' || payload, true);
  -- ${FUNCTION_VERSION}: '@<txid>' lets the writing Fleet process recognise the echo of its own write.
  PERFORM pg_notify('${NOTIFY_CHANNEL}', TG_TABLE_SCHEMA || ' @' || txid_current() || ' ' || payload);
  RETURN NULL;
END
$fn$`

interface TableInfo {
  relname: string
  pk: string | null
  fks: { col: string; ref: string }[]
  installed: boolean
}

export class Catalog {
  readonly #pool: Pool
  readonly #schema: string
  #views = new Map<string, string[]>()
  #triggered = new Set<string>()
  #tables = new Set<string>()

  constructor(pool: Pool, schema: string) {
    this.#pool = pool
    this.#schema = schema
  }

  /** Installs the capture function and the triggers on every table of the schema that lacks them. */
  async installTriggers(): Promise<void> {
    const client = await this.#pool.connect()
    try {
      await client.query('BEGIN')
      // One installer at a time, however many servers start together.
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('fleet_cache_install:' || $1))`, [
        this.#schema,
      ])
      await client.query(`SET LOCAL search_path = ${client.escapeIdentifier(this.#schema)}`)
      const fn = await client.query(
        `SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = $1 AND p.proname = 'fleet_cache_capture' AND p.prosrc LIKE '%' || $2 || '%'`,
        [this.#schema, FUNCTION_VERSION],
      )
      if (fn.rowCount === 0) await client.query(FUNCTION_SQL)
      for (const t of await this.#tableInfo(client)) {
        if (t.installed) continue
        const args = [
          ...(t.pk ? [t.pk, t.relname] : []),
          ...t.fks.flatMap((f) => [f.col, `${t.relname}.${f.col}`]),
        ]
          .map((a) => client.escapeLiteral(a))
          .join(', ')
        const table = client.escapeIdentifier(t.relname)
        const name = (op: string) => client.escapeIdentifier(`fleet_cache_${op}`)
        await client.query(
          `CREATE OR REPLACE TRIGGER ${name('ins')} AFTER INSERT ON ${table} REFERENCING NEW TABLE AS fleet_new
             FOR EACH STATEMENT EXECUTE FUNCTION fleet_cache_capture(${args});
           CREATE OR REPLACE TRIGGER ${name('upd')} AFTER UPDATE ON ${table} REFERENCING OLD TABLE AS fleet_old NEW TABLE AS fleet_new
             FOR EACH STATEMENT EXECUTE FUNCTION fleet_cache_capture(${args});
           CREATE OR REPLACE TRIGGER ${name('del')} AFTER DELETE ON ${table} REFERENCING OLD TABLE AS fleet_old
             FOR EACH STATEMENT EXECUTE FUNCTION fleet_cache_capture(${args});
           CREATE OR REPLACE TRIGGER ${name('trunc')} AFTER TRUNCATE ON ${table}
             FOR EACH STATEMENT EXECUTE FUNCTION fleet_cache_capture(${args});`,
        )
      }
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.release()
    }
  }

  async #tableInfo(client: { query: Pool['query'] }): Promise<TableInfo[]> {
    const r = await client.query<TableInfo>(
      `SELECT c.relname,
              (SELECT a.attname FROM pg_constraint k
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
                WHERE k.conrelid = c.oid AND k.contype = 'p' AND cardinality(k.conkey) = 1) AS pk,
              COALESCE((SELECT json_agg(json_build_object('col', a.attname, 'ref', r.relname) ORDER BY k.conname)
                 FROM pg_constraint k
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
                 JOIN pg_class r ON r.oid = k.confrelid
                WHERE k.conrelid = c.oid AND k.contype = 'f' AND cardinality(k.conkey) = 1), '[]'::json) AS fks,
              EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'fleet_cache_trunc') AS installed
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> 'fleet_migrations'`,
      [this.#schema],
    )
    return r.rows
  }

  /** Reloads views and trigger coverage from the catalog. */
  async refresh(): Promise<void> {
    const tables = await this.#tableInfo(this.#pool)
    const views = await this.#pool.query<{ view: string; base: string }>(
      `SELECT DISTINCT v.relname AS view, t.relname AS base
         FROM pg_rewrite r
         JOIN pg_class v ON v.oid = r.ev_class
         JOIN pg_namespace n ON n.oid = v.relnamespace
         JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass
                         AND d.refclassid = 'pg_class'::regclass
         JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid
        WHERE n.nspname = $1 AND v.relkind IN ('v', 'm') AND t.relkind IN ('r', 'p', 'v', 'm', 'f')`,
      [this.#schema],
    )
    const direct = new Map<string, string[]>()
    for (const { view, base } of views.rows) direct.set(view, [...(direct.get(view) ?? []), base])
    const resolved = new Map<string, string[]>()
    const resolve = (name: string, seen: Set<string>): string[] => {
      const bases = direct.get(name)
      if (!bases) return [name]
      if (seen.has(name)) return []
      seen.add(name)
      return [...new Set(bases.flatMap((b) => resolve(b, seen)))]
    }
    for (const view of direct.keys()) resolved.set(view, resolve(view, new Set()).sort())
    this.#views = resolved
    this.#tables = new Set(tables.map((t) => t.relname))
    this.#triggered = new Set(tables.filter((t) => t.installed).map((t) => t.relname))
  }

  /** The base tables behind `names` (views are replaced by what they read; tables stay). */
  baseTables(names: readonly string[]): string[] {
    return [...new Set(names.flatMap((n) => this.#views.get(n) ?? [n]))].sort()
  }

  /** True when `table` carries the capture triggers (its row tags are reported by PostgreSQL). */
  hasTriggers(table: string): boolean {
    return this.#triggered.has(table)
  }

  /** True when `name` is a table or view the catalog knows (false: refresh may be due). */
  knows(name: string): boolean {
    return this.#tables.has(name) || this.#views.has(name)
  }
}
