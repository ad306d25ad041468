import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { hooks, TestPage } from './objects.js'
import { createFixture, type Fixture, seed } from './support.js'

let f: Fixture
beforeEach(async () => {
  f = await createFixture()
  hooks.assembled = 0
})
afterEach(async () => {
  hooks.afterProduct = async () => {}
  await f.cleanup()
})

describe('stampede protection', () => {
  it('100 concurrent misses for one key across 3 servers run the loader once', async () => {
    const { products } = await seed(f.admin, 1)
    const servers = [await f.server(), await f.server(), await f.server()]
    hooks.afterProduct = () => new Promise((r) => setTimeout(r, 150))
    const reads = Array.from({ length: 100 }, (_, i) => servers[i % 3].cache.get(TestPage, products[0]))
    const results = await Promise.all(reads)
    expect(hooks.assembled).toBe(1)
    expect(results.every((r) => r.value.title() === 'product 0 (Cat)')).toBe(true)
    const statuses = new Set(results.map((r) => r.status))
    expect([...statuses].sort()).toEqual(['HIT', 'MISS'])
    expect(results.filter((r) => r.status === 'MISS').length).toBeGreaterThanOrEqual(1)
  })

  it('100 concurrent misses of one cached query across 3 servers run the query once', async () => {
    const { products } = await seed(f.admin, 1)
    const servers = [await f.server(), await f.server(), await f.server()]
    // The query counts its own runs in a side table (and is slow) through a volatile function.
    await f.admin.query(`CREATE TABLE loads (n int);
      CREATE FUNCTION count_load() RETURNS int LANGUAGE sql VOLATILE AS $$
        INSERT INTO loads VALUES (1); SELECT 1 FROM pg_sleep(0.15) $$`)
    const sql =
      'SELECT p.id, p.name, count_load() AS slow, pg_backend_pid() AS pid FROM products p WHERE p.id = $1'
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => servers[i % 3].cache.query<{ pid: number }>(sql, [products[0]])),
    )
    const loads = await f.admin.query<{ n: number }>('SELECT count(*)::int AS n FROM loads')
    expect(loads.rows[0].n).toBe(1)
    // Every answer comes from that one execution.
    expect(new Set(results.map((r) => r.rows[0].pid)).size).toBe(1)
    expect(results.filter((r) => r.status === 'MISS').length).toBeGreaterThanOrEqual(1)
    expect(results.every((r) => r.status === 'MISS' || r.status === 'HIT')).toBe(true)
  })
})
