import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestApp } from '../support/app.js'
import { Client, createShop, customer } from './helpers.js'

let shop: TestApp
beforeAll(async () => {
  shop = await createShop({ products: 10, reviews: 30 })
})
afterAll(async () => {
  await shop?.close()
})

describe('reviews', () => {
  it('needs a logged-in user', async () => {
    const res = await new Client(shop.app).request('POST', '/api/products/1/reviews', { rating: 5 })
    expect(res.statusCode).toBe(401)
    expect(res.json().error.code).toBe('FLEET_E_HTTP_UNAUTHENTICATED')
  })

  it('adds one review per user and product, shown first on the product page', async () => {
    const { client, id: userId } = await customer(shop.app)
    const before = (await client.request('GET', '/api/products/4')).json()
    const res = await client.request('POST', '/api/products/4/reviews', { rating: 2, body: 'Too small.' })
    expect(res.statusCode).toBe(201)
    expect(res.json()).toMatchObject({ productId: 4, userId, rating: 2, body: 'Too small.' })

    const after = (await client.request('GET', '/api/products/4')).json()
    expect(after.rating.count).toBe(before.rating.count + 1)
    expect(after.reviews[0]).toMatchObject({ id: res.json().id, rating: 2 })
    expect(after.version).toBe(before.version)

    const again = await client.request('POST', '/api/products/4/reviews', { rating: 5 })
    expect(again.statusCode).toBe(409)
    expect(again.json().error.code).toBe('FLEET_E_SHOP_REVIEW_EXISTS')
    // Another product is fine.
    expect((await client.request('POST', '/api/products/5/reviews', { rating: 4 })).statusCode).toBe(201)
  })

  it('answers 404 for a missing product and 400 for a bad rating', async () => {
    const { client } = await customer(shop.app)
    const missing = await client.request('POST', '/api/products/424242/reviews', { rating: 3 })
    expect(missing.statusCode).toBe(404)
    expect(missing.json().error.code).toBe('FLEET_E_SHOP_PRODUCT_NOT_FOUND')
    for (const rating of [0, 6, 3.5, 'five']) {
      const bad = await client.request('POST', '/api/products/1/reviews', { rating })
      expect(bad.statusCode).toBe(400)
      expect(bad.json().error.details.field).toBe('rating')
    }
    const long = await client.request('POST', '/api/products/1/reviews', {
      rating: 3,
      body: 'x'.repeat(5001),
    })
    expect(long.json().error.details.field).toBe('body')
  })
})

describe('review listing', () => {
  it('walks every review of a product once, newest first, and 404s for a missing product', async () => {
    const { rows } = await shop.deps.db.query<{ product_id: number; n: number }>(
      `SELECT product_id, count(*)::int AS n FROM reviews GROUP BY product_id ORDER BY n DESC, product_id LIMIT 1`,
    )
    const { product_id: id, n } = rows[0]
    expect(n).toBeGreaterThan(2)
    const seen: { id: number; createdAt: string }[] = []
    let cursor: string | null = null
    for (let page = 0; page < 100; page++) {
      const url = `/api/products/${id}/reviews?limit=2${cursor ? `&cursor=${cursor}` : ''}`
      const res = await shop.app.inject({ method: 'GET', url })
      expect(res.statusCode, res.body).toBe(200)
      const body = res.json() as { items: { id: number; createdAt: string }[]; nextCursor: string | null }
      seen.push(...body.items)
      cursor = body.nextCursor
      if (!cursor) break
    }
    expect(seen).toHaveLength(n)
    expect(new Set(seen.map((r) => r.id)).size).toBe(n)
    const times = seen.map((r) => Date.parse(r.createdAt))
    expect(times).toEqual([...times].sort((a, b) => b - a))

    const missing = await shop.app.inject({ method: 'GET', url: '/api/products/424242/reviews' })
    expect(missing.statusCode).toBe(404)
    const first = (
      await shop.app.inject({ method: 'GET', url: `/api/products/${id}/reviews?limit=1` })
    ).json()
    const other = await shop.app.inject({
      method: 'GET',
      url: `/api/products/${id + 1}/reviews?cursor=${first.nextCursor}`,
    })
    expect(other.statusCode).toBe(400)
    expect(other.json().error).toMatchObject({
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      details: { field: 'cursor' },
    })
  })
})
