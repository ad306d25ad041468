import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { listCategories, listProducts } from '../../apps/shop/catalog.js'
import shopApp from '../../apps/shop/index.js'
import { ProductPage, RelatedProducts } from '../../apps/shop/objects.js'
import { worstStatus } from '../../src/cache/cache.js'
import { createFixture, type Fixture, seed } from '../cache/support.js'

let f: Fixture
beforeEach(async () => {
  f = await createFixture({}, shopApp)
})
afterEach(async () => {
  await f.cleanup()
})

describe('shop objects', () => {
  it('ProductPage comes back as an instance; a review of one product invalidates its page only', async () => {
    const { products } = await seed(f.admin, 3)
    const [a, b] = products
    const s = await f.server({ listen: false })
    expect((await s.cache.get(ProductPage, a)).status).toBe('MISS')
    const hit = await s.cache.get(ProductPage, a)
    expect(hit.status).toBe('HIT')
    expect(hit.value).toBeInstanceOf(ProductPage)
    expect(hit.value.inStock()).toBe(false)
    expect(hit.value.category.name).toBe('Cat')
    expect(hit.value.createdAt).toBeInstanceOf(Date)
    const etag = hit.value.etag()
    await s.cache.get(ProductPage, b)
    const u = await f.admin.query<{ id: number }>(
      `INSERT INTO users (email, password_hash) VALUES ('r@x.y', 'x') RETURNING id`,
    )
    await s.db.query('INSERT INTO reviews (product_id, user_id, rating, body) VALUES ($1, $2, 5, $3)', [
      a,
      u.rows[0].id,
      'great',
    ])
    const after = await s.cache.get(ProductPage, a)
    expect(after.status).toBe('MISS')
    expect(after.value.rating.count).toBe(1)
    expect(after.value.reviews[0].body).toBe('great')
    expect(after.value.etag()).not.toBe(etag)
    expect((await s.cache.get(ProductPage, b)).status).toBe('HIT')
    expect(JSON.parse(JSON.stringify(after.value)).reviews[0].rating).toBe(5)
  })

  it('RelatedProducts follows any product of the category; the page does not', async () => {
    const { products } = await seed(f.admin, 3)
    const [a, b] = products
    const s = await f.server({ listen: false })
    const r1 = await s.cache.get(RelatedProducts, a)
    expect(r1.value.items.map((p) => p.id).sort()).toEqual([b, products[2]].sort())
    await s.cache.get(ProductPage, a)
    await s.db.query(`UPDATE products SET name = 'renamed' WHERE id = $1`, [b])
    const r2 = await s.cache.get(RelatedProducts, a)
    expect(r2.status).toBe('MISS')
    expect(r2.value.items.find((p) => p.id === b)?.name).toBe('renamed')
    expect((await s.cache.get(ProductPage, a)).status).toBe('HIT')
    expect(worstStatus('HIT', 'MISS')).toBe('MISS')
    expect(worstStatus('HIT', 'HIT')).toBe('HIT')
    expect(worstStatus('STALE', 'HIT')).toBe('STALE')
  })

  it('reader() runs Queryable code (the shop catalog) through the query cache and reports X-Cache', async () => {
    await seed(f.admin, 2)
    const s = await f.server({ listen: false })
    const first = s.cache.reader()
    const cats = await listCategories(first.db)
    expect(cats[0].productCount).toBe(2)
    expect(first.status()).toBe('MISS')
    const second = s.cache.reader()
    expect((await listProducts(second.db, { sort: 'price' })).items).toHaveLength(2)
    expect(second.status()).toBe('MISS')
    const third = s.cache.reader()
    await listCategories(third.db)
    await listProducts(third.db, { sort: 'price' })
    expect(third.status()).toBe('HIT')
    await s.db.query(`UPDATE categories SET name = 'New'`)
    const fourth = s.cache.reader()
    expect((await listCategories(fourth.db))[0].name).toBe('New')
    expect(fourth.status()).toBe('MISS')
  })

  it('a missing product is cached as not found until a product with that id is created', async () => {
    const { category, products } = await seed(f.admin, 1)
    const s = await f.server({ listen: false })
    const next = products[0] + 1
    const miss = await s.cache.get(ProductPage, next)
    expect(miss.status).toBe('MISS')
    expect(miss.value).toBeInstanceOf(ProductPage)
    expect(miss.value.exists).toBe(false)
    expect((await s.cache.get(RelatedProducts, next)).value.items).toEqual([])
    const again = await s.cache.get(ProductPage, next)
    expect(again).toMatchObject({ status: 'HIT', value: { exists: false } })
    const { rows } = await s.db.query<{ id: number }>(
      `INSERT INTO products (slug, name, price_cents, category_id) VALUES ('late', 'Late', 100, $1) RETURNING id`,
      [category],
    )
    expect(rows[0].id).toBe(next)
    const found = await s.cache.get(ProductPage, next)
    expect(found.status).toBe('MISS')
    expect(found.value).toMatchObject({ exists: true, id: next, name: 'Late', images: {} })
    expect(found.value.etag()).toMatch(/^"1-[\w-]{12}"$/)
    const related = await s.cache.get(RelatedProducts, next)
    expect(related.status).toBe('MISS')
    expect(related.value.items.map((p) => p.id)).toEqual([products[0]])
    expect(found.value.toBody(related.value).related).toHaveLength(1)
    expect(found.value.toJSON()).not.toHaveProperty('exists')
    expect(found.value.toJSON()).not.toHaveProperty('digest')
  })
})
