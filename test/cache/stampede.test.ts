import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { hooks, TestPage } from './objects.js'
import { createFixture, eventually, type Fixture, gate, lockWaits, seed } from './support.js'

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
    // The one load is held until the other two servers wait for it (each counts one lock wait).
    const slow = gate()
    hooks.afterProduct = slow.wait
    const reads = Array.from({ length: 100 }, (_, i) => servers[i % 3].cache.get(TestPage, products[0]))
    try {
      await slow.reached
      expect(await eventually(async () => (await lockWaits(servers)) >= 2, 10_000)).toBe(true)
    } finally {
      slow.open()
    }
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
    // The query counts its own runs in a side table through a volatile function, and is held by an advisory
    // lock this test takes (a random key: other test files share the database) until the other two servers
    // wait for it.
    const key = Math.floor(Math.random() * 2 ** 31)
    await f.admin.query(`CREATE TABLE loads (n int);
      CREATE FUNCTION count_load() RETURNS int LANGUAGE sql VOLATILE AS $$
        INSERT INTO loads VALUES (1); SELECT pg_advisory_xact_lock_shared(${key}); SELECT 1 $$`)
    const sql =
      'SELECT p.id, p.name, count_load() AS slow, pg_backend_pid() AS pid FROM products p WHERE p.id = $1'
    const read = (i: number) => servers[i % 3].cache.query<{ pid: number }>(sql, [products[0]])
    let reads: ReturnType<typeof read>[] = []
    const holder = await f.admin.connect()
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [key])
      reads = Array.from({ length: 100 }, (_, i) => read(i))
      expect(await eventually(async () => (await lockWaits(servers)) >= 2, 10_000)).toBe(true)
    } finally {
      holder.release(true) // its session ends, and its advisory lock with it: the held query goes on
    }
    const results = await Promise.all(reads)
    const loads = await f.admin.query<{ n: number }>('SELECT count(*)::int AS n FROM loads')
    expect(loads.rows[0].n).toBe(1)
    // Every answer comes from that one execution.
    expect(new Set(results.map((r) => r.rows[0].pid)).size).toBe(1)
    expect(results.filter((r) => r.status === 'MISS').length).toBeGreaterThanOrEqual(1)
    expect(results.every((r) => r.status === 'MISS' || r.status === 'HIT')).toBe(true)
  })
})
