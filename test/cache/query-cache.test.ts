import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createFixture, eventually, type Fixture, seed } from './support.js'

let f: Fixture
beforeEach(async () => {
  f = await createFixture()
})
afterEach(async () => {
  await f.cleanup()
})

const BY_ID = 'SELECT id, name, price_cents FROM products WHERE id = $1'

describe('query cache', () => {
  it('misses, then hits, and a write through Fleet invalidates before it is acknowledged', async () => {
    const { products } = await seed(f.admin, 2)
    const s = await f.server({ listen: false }) // the synchronous path alone
    const first = await s.cache.query(BY_ID, [products[0]])
    expect(first.status).toBe('MISS')
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('HIT')
    await s.db.query('UPDATE products SET name = $1 WHERE id = $2', ['renamed', products[0]])
    const after = await s.cache.query<{ name: string }>(BY_ID, [products[0]])
    expect(after.status).toBe('MISS')
    expect(after.rows[0].name).toBe('renamed')
  })

  it('a write on another server, in a transaction, is seen by the next read everywhere', async () => {
    const { products } = await seed(f.admin, 1)
    const a = await f.server({ listen: false })
    const b = await f.server({ listen: false })
    await a.cache.query(BY_ID, [products[0]])
    expect((await a.cache.query(BY_ID, [products[0]])).status).toBe('HIT')
    await b.db.transaction(async (tx) => {
      await tx.query('UPDATE products SET price_cents = 999 WHERE id = $1', [products[0]])
    })
    const r = await a.cache.query<{ price_cents: number }>(BY_ID, [products[0]])
    expect(r.rows[0].price_cents).toBe(999)
  })

  it('joins, subqueries and CTEs depend on every table they read; views resolve to base tables', async () => {
    const { products } = await seed(f.admin, 1)
    await f.admin.query(
      `CREATE VIEW product_names AS SELECT p.id, p.name, c.name AS category FROM products p JOIN categories c ON c.id = p.category_id`,
    )
    const s = await f.server()
    const viaView = 'SELECT * FROM product_names WHERE id = $1'
    const viaCte = `WITH r AS (SELECT product_id, count(*) AS n FROM reviews GROUP BY product_id)
      SELECT p.id, coalesce(r.n, 0) AS n FROM products p LEFT JOIN r ON r.product_id = p.id WHERE p.id = $1`
    await s.cache.query(viaView, [products[0]])
    await s.cache.query(viaCte, [products[0]])
    expect((await s.cache.query(viaView, [products[0]])).status).toBe('HIT')
    expect((await s.cache.query(viaCte, [products[0]])).status).toBe('HIT')
    await s.db.query(`UPDATE categories SET name = 'Renamed'`)
    const v = await s.cache.query<{ category: string }>(viaView, [products[0]])
    expect(v.status).toBe('MISS')
    expect(v.rows[0].category).toBe('Renamed')
    expect((await s.cache.query(viaCte, [products[0]])).status).toBe('HIT')
    const u = await f.admin.query<{ id: number }>(
      `INSERT INTO users (email, password_hash) VALUES ('a@b.c', 'x') RETURNING id`,
    )
    await s.db.query('INSERT INTO reviews (product_id, user_id, rating) VALUES ($1, $2, 5)', [
      products[0],
      u.rows[0].id,
    ])
    const c = await s.cache.query<{ n: number }>(viaCte, [products[0]])
    expect(c.status).toBe('MISS')
    expect(Number(c.rows[0].n)).toBe(1)
  })

  it('a foreign-key cascade invalidates the child table', async () => {
    const { products } = await seed(f.admin, 1)
    const u = await f.admin.query<{ id: number }>(
      `INSERT INTO users (email, password_hash) VALUES ('a@b.c', 'x') RETURNING id`,
    )
    await f.admin.query('INSERT INTO reviews (product_id, user_id, rating) VALUES ($1, $2, 4)', [
      products[0],
      u.rows[0].id,
    ])
    const s = await f.server({ listen: false }) // the synchronous path alone
    const count = 'SELECT count(*)::int AS n FROM reviews'
    expect((await s.cache.query<{ n: number }>(count)).rows[0].n).toBe(1)
    expect((await s.cache.query(count)).status).toBe('HIT')
    // Deleting the user cascades to reviews: the statement names only users.
    await s.db.query('DELETE FROM users WHERE id = $1', [u.rows[0].id])
    const r = await s.cache.query<{ n: number }>(count)
    expect(r.status).toBe('MISS')
    expect(r.rows[0].n).toBe(0)
  })

  it('a table written by a trigger is invalidated with the write that fired it', async () => {
    await f.admin.query(`CREATE TABLE price_log (product_id bigint, price integer);
      CREATE FUNCTION log_price() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO price_log VALUES (NEW.id, NEW.price_cents); RETURN NEW; END $$;
      CREATE TRIGGER log_price AFTER UPDATE ON products FOR EACH ROW EXECUTE FUNCTION log_price();`)
    const { products } = await seed(f.admin, 1)
    const s = await f.server({ listen: false }) // the synchronous path alone
    const q = 'SELECT count(*)::int AS n FROM price_log'
    expect((await s.cache.query<{ n: number }>(q)).rows[0].n).toBe(0)
    expect((await s.cache.query(q)).status).toBe('HIT')
    await s.db.query('UPDATE products SET price_cents = 5 WHERE id = $1', [products[0]])
    const r = await s.cache.query<{ n: number }>(q)
    expect(r.status).toBe('MISS')
    expect(r.rows[0].n).toBe(1)
  })

  it('a write made outside Fleet (another client) is seen within 1 second', async () => {
    const { products } = await seed(f.admin, 1)
    const s = await f.server()
    await s.cache.query(BY_ID, [products[0]])
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('HIT')
    await f.admin.query(`UPDATE products SET name = 'outside' WHERE id = $1`, [products[0]])
    const seen = await eventually(
      async () => (await s.cache.query<{ name: string }>(BY_ID, [products[0]])).rows[0].name === 'outside',
      1_000,
    )
    expect(seen).toBe(true)
  })

  it('one Fleet write bumps each tag once in its own process; other processes and outside writes still apply', async () => {
    const { products } = await seed(f.admin, 1)
    const s1 = await f.server()
    const s2 = await f.server()
    const count = async (s: typeof s1, source: string) =>
      (await s.cache.metrics.invalidations.get()).values.find((v) => v.labels.source === source)?.value ?? 0
    const w0 = await count(s1, 'write')
    const n1 = await count(s1, 'notify')
    const n2 = await count(s2, 'notify')
    await s2.cache.query(BY_ID, [products[0]])
    expect((await s2.cache.query(BY_ID, [products[0]])).status).toBe('HIT')
    await s1.db.query(`UPDATE products SET name = 'inside' WHERE id = $1`, [products[0]])
    const written = (await count(s1, 'write')) - w0
    expect(written).toBeGreaterThan(0)
    // Another Fleet process sees the write at once (the tokens are shared in Redis).
    const other = await s2.cache.query<{ name: string }>(BY_ID, [products[0]])
    expect(other.status).toBe('MISS')
    expect(other.rows[0].name).toBe('inside')
    // An outside write after it: once s1 heard that one, it has handled (skipped) its own echo before it.
    await f.admin.query(`UPDATE products SET name = 'outside' WHERE id = $1`, [products[0]])
    const heard = await eventually(
      async () =>
        (await count(s1, 'notify')) > n1 &&
        (await count(s2, 'notify')) - n2 >= (await count(s1, 'notify')) - n1 + written,
      2_000,
    )
    expect(heard).toBe(true)
    // s2 applied both notifications; s1 only the outside one: its own write was bumped once, by the write path.
    expect((await count(s2, 'notify')) - n2 - ((await count(s1, 'notify')) - n1)).toBe(written)
    expect((await count(s1, 'write')) - w0).toBe(written)
    expect((await s1.cache.query<{ name: string }>(BY_ID, [products[0]])).rows[0].name).toBe('outside')
  })

  it('statements that are not plain SELECTs, or read no table, bypass the cache', async () => {
    const s = await f.server()
    expect((await s.cache.query('SELECT 1 AS one')).status).toBe('BYPASS')
    expect((await s.cache.query('SELECT id FROM products FOR UPDATE')).status).toBe('BYPASS')
    await expect(s.cache.query('SELEC nope')).rejects.toMatchObject({ code: 'FLEET_E_CACHE_SQL_PARSE' })
  })

  it('FLEET_CACHE=false bypasses every read', async () => {
    await f.cleanup()
    f = await createFixture({ FLEET_CACHE: 'false' })
    const { products } = await seed(f.admin, 1)
    const s = await f.server()
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('BYPASS')
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('BYPASS')
  })
})
