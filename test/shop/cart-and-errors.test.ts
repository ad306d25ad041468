import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestApp } from '../support/app.js'
import { admin, Client, createShop } from './helpers.js'

let shop: TestApp
beforeAll(async () => {
  shop = await createShop({ products: 10, reviews: 0, env: { FLEET_BODY_LIMIT: '2kb' } })
  await shop.deps.db.query('UPDATE products SET stock = 5')
})
afterAll(async () => {
  await shop?.close()
})

describe('cart', () => {
  it('sets, replaces and removes lines, with current prices and totals', async () => {
    const c = new Client(shop.app)
    expect((await c.request('GET', '/api/cart')).json()).toEqual({ items: [], count: 0, totals: {} })
    await c.request('PUT', '/api/cart/items/2', { quantity: 1 })
    await c.request('PUT', '/api/cart/items/1', { quantity: 2 })
    const replaced = await c.request('PUT', '/api/cart/items/2', { quantity: 3 })
    const cart = replaced.json()
    const [p1, p2] = await Promise.all(
      [1, 2].map(async (id) => (await c.request('GET', `/api/products/${id}`)).json()),
    )
    expect(cart.items.map((l: { productId: number; quantity: number }) => [l.productId, l.quantity])).toEqual(
      [
        [1, 2],
        [2, 3],
      ],
    )
    expect(cart.count).toBe(5)
    expect(cart.items[0].lineTotalCents).toBe(2 * p1.priceCents)
    expect(cart.totals).toEqual({ EUR: 2 * p1.priceCents + 3 * p2.priceCents })

    const removed = await c.request('DELETE', '/api/cart/items/1')
    expect(removed.json().items.map((l: { productId: number }) => l.productId)).toEqual([2])
    expect((await c.request('DELETE', '/api/cart/items/7')).statusCode).toBe(200)
  })

  it('refuses unknown products (404) and more than the stock (409)', async () => {
    const c = new Client(shop.app)
    const missing = await c.request('PUT', '/api/cart/items/99999', { quantity: 1 })
    expect(missing.statusCode).toBe(404)
    expect(missing.json().error.code).toBe('FLEET_E_SHOP_PRODUCT_NOT_FOUND')
    expect(c.sid).toBeUndefined()
    const tooMany = await c.request('PUT', '/api/cart/items/3', { quantity: 6 })
    expect(tooMany.statusCode).toBe(409)
    expect(tooMany.json().error).toMatchObject({
      code: 'FLEET_E_SHOP_INSUFFICIENT_STOCK',
      details: { field: 'quantity', stock: 5, requested: 6 },
    })
    for (const quantity of [0, -1, 1000, 'two', 1.5]) {
      const bad = await c.request('PUT', '/api/cart/items/3', { quantity })
      expect(bad.statusCode, String(quantity)).toBe(400)
      expect(bad.json().error.details.field).toBe('quantity')
    }
  })

  it('drops a line whose product was deleted', async () => {
    const boss = await admin(shop.app)
    const p = (
      await boss.request('POST', '/api/products', {
        name: 'Short Lived',
        priceCents: 100,
        stock: 5,
        categoryId: 1,
      })
    ).json()
    const c = new Client(shop.app)
    await c.request('PUT', `/api/cart/items/${p.id}`, { quantity: 1 })
    await c.request('PUT', '/api/cart/items/4', { quantity: 1 })
    await boss.request('DELETE', `/api/products/${p.id}`)
    const cart = (await c.request('GET', '/api/cart')).json()
    expect(cart.items.map((l: { productId: number }) => l.productId)).toEqual([4])
    expect(
      await shop.deps.redis.hexists(`${shop.deps.config.redisPrefix}sess:${c.sid}`, `cart:${p.id}`),
    ).toBe(0)
  })
})

describe('HTTP errors', () => {
  it('413 for a body over FLEET_BODY_LIMIT', async () => {
    const res = await shop.app.inject({
      method: 'POST',
      url: '/api/users',
      payload: { email: 'big@example.test', password: 'x'.repeat(4096) },
    })
    expect(res.statusCode).toBe(413)
    expect(res.json().error.code).toBe('FLEET_E_HTTP_BODY_TOO_LARGE')
  })

  it('415 for a body that is not JSON', async () => {
    const res = await shop.app.inject({
      method: 'POST',
      url: '/api/users',
      payload: 'email=a@b.test&password=twelve-chars-long',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    expect(res.statusCode).toBe(415)
    expect(res.json().error.code).toBe('FLEET_E_HTTP_UNSUPPORTED_MEDIA_TYPE')
  })

  it('400 for malformed JSON, 404 for an unknown route, both in the error format', async () => {
    const bad = await shop.app.inject({
      method: 'POST',
      url: '/api/session',
      payload: '{"email": ',
      headers: { 'content-type': 'application/json' },
    })
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error.code).toMatch(/^FLEET_E_HTTP_/)
    const none = await shop.app.inject({ method: 'GET', url: '/api/nothing-here' })
    expect(none.statusCode).toBe(404)
    expect(none.json()).toEqual({ error: { code: 'FLEET_E_HTTP_NOT_FOUND', message: expect.any(String) } })
  })
})
