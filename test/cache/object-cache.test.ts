import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { CacheStore } from '../../src/cache/store.js'
import { hooks, TestPage, TestReview } from './objects.js'
import { createFixture, type Fixture, gate, seed } from './support.js'

let f: Fixture
beforeEach(async () => {
  f = await createFixture()
  hooks.assembled = 0
  hooks.afterProduct = async () => {}
})
afterEach(async () => {
  await f.cleanup()
})

async function addUser(): Promise<number> {
  const u = await f.admin.query<{ id: number }>(
    `INSERT INTO users (email, password_hash) VALUES (md5(random()::text) || '@x.y', 'x') RETURNING id`,
  )
  return u.rows[0].id
}

describe('object cache', () => {
  it('returns an instance of the class: methods, Dates, Maps, Sets, BigInts, Buffers and nested classes intact', async () => {
    const { products } = await seed(f.admin, 1)
    await f.admin.query('INSERT INTO reviews (product_id, user_id, rating) VALUES ($1, $2, 4)', [
      products[0],
      await addUser(),
    ])
    const s = await f.server()
    expect((await s.cache.get(TestPage, products[0])).status).toBe('MISS')
    const { value, status } = await s.cache.get(TestPage, products[0])
    expect(status).toBe('HIT')
    expect(value).toBeInstanceOf(TestPage)
    expect(value.title()).toBe('product 0 (Cat)')
    expect(value.createdAt).toBeInstanceOf(Date)
    expect(value.createdAt.getTime()).toBeGreaterThan(0)
    expect(value.attrs).toEqual(new Map([['reviews', 1]]))
    expect(value.labels).toEqual(new Set(['new', 'product 0']))
    expect(value.priceCents).toBe(100n)
    expect(Buffer.isBuffer(value.blob)).toBe(true)
    expect([...value.blob.subarray(0, 3)]).toEqual([1, 2, 3])
    expect(value.reviews[0]).toBeInstanceOf(TestReview)
    expect(value.reviews[0].stars()).toBe('****')
    expect(value.reviews[0].at).toBeInstanceOf(Date)
  })

  it('invalidation is precise: a change to product 42 reaches its page and not product 43', async () => {
    const { products } = await seed(f.admin, 2)
    const [a, b] = products
    const s = await f.server({ listen: false })
    await s.cache.get(TestPage, a)
    await s.cache.get(TestPage, b)
    await s.db.query(`UPDATE products SET name = 'changed' WHERE id = $1`, [a])
    const ra = await s.cache.get(TestPage, a)
    expect(ra.status).toBe('MISS')
    expect(ra.value.name).toBe('changed')
    expect((await s.cache.get(TestPage, b)).status).toBe('HIT')
    // A new review of b (a row of another table that references b) reaches b only.
    await s.db.query('INSERT INTO reviews (product_id, user_id, rating) VALUES ($1, $2, 2)', [
      b,
      await addUser(),
    ])
    expect((await s.cache.get(TestPage, a)).status).toBe('HIT')
    const rb = await s.cache.get(TestPage, b)
    expect(rb.status).toBe('MISS')
    expect(rb.value.reviews).toHaveLength(1)
    // The category both read: both pages.
    await s.db.query(`UPDATE categories SET name = 'Other'`)
    expect((await s.cache.get(TestPage, a)).value.category).toBe('Other')
    expect((await s.cache.get(TestPage, b)).value.category).toBe('Other')
  })

  it('a bulk change of every row (TRUNCATE-like) reaches every page', async () => {
    const { products } = await seed(f.admin, 2)
    const s = await f.server({ listen: false })
    await s.cache.get(TestPage, products[0])
    await s.db.query('UPDATE products SET price_cents = price_cents + 1')
    expect((await s.cache.get(TestPage, products[0])).value.priceCents).toBe(101n)
    await s.cache.invalidateTags(['products:*'])
    expect((await s.cache.get(TestPage, products[0])).status).toBe('MISS')
  })

  it('workers prime objects ahead of time; the next read is a hit', async () => {
    const { products } = await seed(f.admin, 1)
    const worker = await f.server()
    const web = await f.server()
    const primed = await worker.cache.prime(TestPage, products[0])
    expect(primed.stored).toBe(true)
    expect(primed.value).toBeInstanceOf(TestPage)
    const r = await web.cache.get(TestPage, products[0])
    expect(r.status).toBe('HIT')
    expect(r.value.title()).toBe('product 0 (Cat)')
  })

  it('no stale set: a load that overlaps a write is not stored, and the next read sees the write', async () => {
    const { products } = await seed(f.admin, 1)
    const s = await f.server({ listen: false })
    const held = gate()
    hooks.afterProduct = held.wait
    const slow = s.cache.get(TestPage, products[0]) // reads the old row, then waits
    await held.reached
    await s.db.query(`UPDATE products SET name = 'new' WHERE id = $1`, [products[0]])
    held.open()
    const old = await slow
    expect(old.value.name).toBe('product 0') // it began before the write: the old value is fine for it
    hooks.afterProduct = async () => {}
    const next = await s.cache.get(TestPage, products[0])
    expect(next.status).toBe('MISS')
    expect(next.value.name).toBe('new')
    expect(await metric(s.cache.metrics.registry, 'fleet_cache_fills_refused_total')).toBe(1)
  })

  it('a read that starts after a write does not take the result of a load that began before it', async () => {
    const { products } = await seed(f.admin, 1)
    const s = await f.server({ listen: false })
    const held = gate()
    hooks.afterProduct = held.wait
    const early = s.cache.get(TestPage, products[0]) // its load reads the old row, then waits
    await held.reached
    await s.db.query(`UPDATE products SET name = 'new' WHERE id = $1`, [products[0]])
    const lateRead = nextStoreRead()
    const late = s.cache.get(TestPage, products[0]) // same key, same process: finds the flight in progress
    await lateRead
    hooks.afterProduct = async () => {}
    held.open()
    expect((await early).value.name).toBe('product 0')
    expect((await late).value.name).toBe('new')
  })
})

/**
 * Resolves once the next cache entry read has returned and the reader has acted on it: the reader's own
 * continuation runs in the microtasks that follow the read, all done before the next macrotask.
 */
function nextStoreRead(): Promise<void> {
  const read = CacheStore.prototype.read
  onTestFinished(() => {
    CacheStore.prototype.read = read
  })
  return new Promise<void>((resolve) => {
    CacheStore.prototype.read = function (this: CacheStore, ...args: Parameters<CacheStore['read']>) {
      CacheStore.prototype.read = read
      const result = read.apply(this, args)
      result.then(
        () => setImmediate(resolve),
        () => setImmediate(resolve),
      )
      return result
    }
  })
}

async function metric(registry: import('prom-client').Registry, name: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name)
  return (m?.values ?? []).reduce((a, v) => a + Number(v.value), 0)
}
