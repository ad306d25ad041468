import fs from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestApp } from '../support/app.js'
import { admin, createShop } from './helpers.js'

interface Item {
  id: number
  name: string
  categoryId: number
}

const PRODUCTS = 80
let shop: TestApp
let categories: { id: number; slug: string; name: string; productCount: number }[]

async function get(url: string) {
  return shop.app.inject({ method: 'GET', url })
}

/** Follows nextCursor to the end (bounded), returning every item in order. */
async function walk(query: string, limit: number): Promise<Item[]> {
  const out: Item[] = []
  let cursor: string | null = null
  for (let page = 0; page < 1000; page++) {
    const res = await get(`/api/products?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`)
    expect(res.statusCode, res.body).toBe(200)
    const body = res.json() as { items: Item[]; nextCursor: string | null }
    expect(body.items.length).toBeLessThanOrEqual(limit)
    out.push(...body.items)
    cursor = body.nextCursor
    if (!cursor) return out
  }
  throw new Error('cursor walk did not end')
}

/** The full order, straight from PostgreSQL (its collation decides names). */
async function expectedOrder(sort: string): Promise<number[]> {
  const order: Record<string, string> = {
    price: 'price_cents, id',
    '-price': 'price_cents DESC, id DESC',
    name: 'name, id',
    '-created': 'created_at DESC, id DESC',
  }
  const { rows } = await shop.deps.db.query<{ id: number }>(`SELECT id FROM products ORDER BY ${order[sort]}`)
  return rows.map((r) => r.id)
}

beforeAll(async () => {
  shop = await createShop({ products: PRODUCTS, reviews: 600 })
  // A few admin-made products: timestamps with microseconds, a shared name and price (ties).
  const a = await admin(shop.app)
  for (let i = 0; i < 4; i++) {
    const res = await a.request('POST', '/api/products', {
      name: 'Twin Product',
      slug: `twin-product-${i}`,
      priceCents: 1234,
      stock: 5,
      categoryId: 1,
    })
    expect(res.statusCode).toBe(201)
  }
  categories = (await get('/api/categories')).json().items
})
afterAll(async () => {
  await shop?.close()
})

describe('index', () => {
  it('GET / (the address fleet up prints) lists the routes, each of which answers', async () => {
    const res = await get('/')
    expect(res.statusCode).toBe(200)
    const index = res.json() as { name: string; openapi: string; routes: Record<string, string> }
    expect((await get(index.openapi)).statusCode).toBe(200)
    const paths = Object.keys((await get(index.openapi)).json().paths as Record<string, unknown>)
    for (const route of Object.values(index.routes)) {
      const [, path] = route.split(' ')
      const template = path.split('?')[0].replace(/:(\w+)/g, '{$1}')
      expect(paths, route).toContain(template)
    }
  })
})

describe('categories', () => {
  it('lists the 20 categories with their product counts', async () => {
    expect(categories).toHaveLength(20)
    expect(categories.reduce((n, c) => n + c.productCount, 0)).toBe(PRODUCTS + 4)
    expect(categories.map((c) => c.name)).toEqual([...categories.map((c) => c.name)].sort())
  })
})

describe('product listing', () => {
  it('defaults to 20 items, newest first', async () => {
    const body = (await get('/api/products')).json()
    expect(body.items).toHaveLength(20)
    expect(body.items[0].name).toBe('Twin Product')
    expect(body.nextCursor).toEqual(expect.any(String))
  })

  for (const sort of ['price', '-price', 'name', '-created']) {
    it(`walks every product exactly once, in order, with sort=${sort}`, async () => {
      const items = await walk(`sort=${encodeURIComponent(sort)}`, 7)
      expect(items).toHaveLength(PRODUCTS + 4)
      expect(new Set(items.map((i) => i.id)).size).toBe(PRODUCTS + 4)
      expect(items.map((i) => i.id)).toEqual(await expectedOrder(sort))
    })
  }

  it('filters by category slug or id, and the walk stays inside it', async () => {
    const cat = categories.find((c) => c.productCount >= 3)!
    const bySlug = await walk(`category=${cat.slug}&sort=-price`, 2)
    expect(bySlug).toHaveLength(cat.productCount)
    expect(bySlug.every((i) => i.categoryId === cat.id)).toBe(true)
    const byId = await walk(`category=${cat.id}&sort=-price`, 100)
    expect(byId.map((i) => i.id)).toEqual(bySlug.map((i) => i.id))
  })

  it('searches name and description with q', async () => {
    const hits = await walk('q=twin&sort=name', 3)
    expect(hits.map((i) => i.name)).toEqual(['Twin Product', 'Twin Product', 'Twin Product', 'Twin Product'])
    const word = (await get('/api/products/1')).json().name.split(' ')[2].toLowerCase()
    const found = await walk(`q=${word}&sort=price`, 50)
    expect(found.length).toBeGreaterThan(0)
    expect(found.some((i) => i.id === 1)).toBe(true)
    const none = await get('/api/products?q=zzzznotaword')
    expect(none.json()).toEqual({ items: [], nextCursor: null })
  })

  it('rejects bad input with 400 naming the field', async () => {
    const cases: [string, string, string][] = [
      ['/api/products?limit=0', 'FLEET_E_HTTP_VALIDATION', 'limit'],
      ['/api/products?limit=101', 'FLEET_E_HTTP_VALIDATION', 'limit'],
      ['/api/products?sort=price_desc', 'FLEET_E_HTTP_VALIDATION', 'sort'],
      ['/api/products?category=no-such-category', 'FLEET_E_SHOP_UNKNOWN_CATEGORY', 'category'],
      ['/api/products?cursor=not-a-cursor', 'FLEET_E_SHOP_INVALID_CURSOR', 'cursor'],
    ]
    for (const [url, code, field] of cases) {
      const res = await get(url)
      expect(res.statusCode, url).toBe(400)
      expect(res.json().error, url).toMatchObject({ code, details: { field } })
    }
    const { nextCursor } = (await get('/api/products?sort=price&limit=2')).json()
    const wrongSort = await get(`/api/products?sort=name&cursor=${nextCursor}`)
    expect(wrongSort.statusCode).toBe(400)
    expect(wrongSort.json().error.code).toBe('FLEET_E_SHOP_INVALID_CURSOR')
    const forged = Buffer.from(JSON.stringify(['sort=-created', "'; DROP TABLE products", 1])).toString(
      'base64url',
    )
    const forgedRes = await get(`/api/products?sort=-created&cursor=${forged}`)
    expect(forgedRes.statusCode).toBe(400)
    expect(forgedRes.json().error.code).toBe('FLEET_E_SHOP_INVALID_CURSOR')
    expect((await get('/api/products?limit=1')).statusCode).toBe(200)
  })
})

describe('product page', () => {
  it('has the product, its category, rating summary, 5 latest reviews and 5 related products', async () => {
    const { rows } = await shop.deps.db.query<{ product_id: number; n: number; avg: string }>(
      `SELECT product_id, count(*)::int AS n, round(avg(rating), 2)::text AS avg FROM reviews
       GROUP BY product_id ORDER BY count(*) DESC, product_id LIMIT 1`,
    )
    const { product_id: id, n, avg } = rows[0]
    expect(n).toBeGreaterThan(5)
    const res = await get(`/api/products/${id}`)
    expect(res.statusCode).toBe(200)
    const page = res.json()
    expect(res.headers.etag).toMatch(new RegExp(`^"${page.version}-[\\w-]{24}"$`))
    expect(page.images).toEqual({})
    expect(page).toMatchObject({ id, version: 1, stock: expect.any(Number), priceCents: expect.any(Number) })
    expect(page.category).toEqual({
      id: page.categoryId,
      slug: expect.any(String),
      name: expect.any(String),
    })
    expect(page.rating).toEqual({ count: n, average: Number(avg) })
    expect(page.reviews).toHaveLength(5)
    const times = page.reviews.map((r: { createdAt: string }) => Date.parse(r.createdAt))
    expect(times).toEqual([...times].sort((a, b) => b - a))
    const newest = await shop.deps.db.query<{ max: Date }>(
      'SELECT max(created_at) FROM reviews WHERE product_id = $1',
      [id],
    )
    expect(times[0]).toBe(newest.rows[0].max.getTime())
    expect(page.related.length).toBeLessThanOrEqual(5)
    for (const r of page.related) {
      expect(r.categoryId).toBe(page.categoryId)
      expect(r.id).not.toBe(id)
    }
  })

  it("docs/api.md's example Product is the seeded product 17, field for field", async () => {
    // The seed is deterministic: a product's fields depend on its position, not on the catalog's size.
    const doc = await fs.readFile(new URL('../../docs/api.md', import.meta.url), 'utf8')
    const block = /A Product:\s*```json\n([\s\S]*?)```/.exec(doc)
    expect(block, 'the "A Product:" json block in docs/api.md').not.toBeNull()
    const documented = JSON.parse(block![1]) as Record<string, unknown>
    const res = await get(`/api/products/${documented.id}`)
    expect(res.statusCode).toBe(200)
    const served = res.json() as Record<string, unknown>
    for (const [field, value] of Object.entries(documented)) expect(served[field], field).toEqual(value)
  })

  it('answers 404 for a missing product and 400 for a malformed id', async () => {
    const missing = await get('/api/products/999999')
    expect(missing.statusCode).toBe(404)
    expect(missing.json().error).toMatchObject({
      code: 'FLEET_E_SHOP_PRODUCT_NOT_FOUND',
      details: { productId: 999999 },
    })
    const bad = await get('/api/products/abc')
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error).toMatchObject({ code: 'FLEET_E_HTTP_VALIDATION', details: { field: 'id' } })
  })
})

describe('openapi', () => {
  it('documents every shop route with a tag', async () => {
    const doc = (await get('/openapi.json')).json()
    const expected: [string, string][] = [
      ['/api/users', 'post'],
      ['/api/session', 'post'],
      ['/api/session', 'delete'],
      ['/api/me', 'get'],
      ['/api/categories', 'get'],
      ['/api/products', 'get'],
      ['/api/products', 'post'],
      ['/api/products/{id}', 'get'],
      ['/api/products/{id}', 'patch'],
      ['/api/products/{id}', 'delete'],
      ['/api/products/{id}/reviews', 'post'],
      ['/api/products/{id}/reviews', 'get'],
      ['/api/cart', 'get'],
      ['/api/cart/items/{productId}', 'put'],
      ['/api/cart/items/{productId}', 'delete'],
    ]
    for (const [path, method] of expected) {
      const op = doc.paths[path]?.[method]
      expect(op, `${method} ${path}`).toBeDefined()
      expect(op.tags.length, `${method} ${path}`).toBeGreaterThan(0)
      expect(Object.keys(op.responses), `${method} ${path}`).not.toHaveLength(0)
    }
  })
})
