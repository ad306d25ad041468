import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { connectRedis } from '../../src/redis/connect.js'
import { freePort } from '../../src/stack/ports.js'
import { SessionStore } from '../../src/web/session.js'
import type { TestApp } from '../support/app.js'
import { Client, createShop, customer, setCookieHeader } from './helpers.js'

const TTL_MS = 3_600_000
let shop: TestApp
const key = (sid: string) => `${shop.deps.config.redisPrefix}sess:${sid}`

beforeAll(async () => {
  shop = await createShop({ products: 30, reviews: 0, env: { FLEET_SESSION_TTL: '1h' } })
  // Some seeded products are out of stock; these tests need every one available.
  await shop.deps.db.query('UPDATE products SET stock = 100')
})
afterAll(async () => {
  await shop?.close()
})

describe('session cookie', () => {
  it('is HttpOnly, SameSite=Lax, Path=/, with Max-Age equal to the TTL, not Secure over http', async () => {
    const c = new Client(shop.app)
    const res = await c.request('PUT', '/api/cart/items/1', { quantity: 1 })
    expect(res.statusCode).toBe(200)
    const header = setCookieHeader(res)!
    expect(header).toMatch(/^fleet_sid=[A-Za-z0-9_-]{43};/)
    expect(header).toContain('HttpOnly')
    expect(header).toContain('SameSite=Lax')
    expect(header).toContain('Path=/')
    expect(header).toContain(`Max-Age=${TTL_MS / 1000}`)
    expect(header).not.toContain('Secure')
    expect(await shop.deps.redis.type(key(c.sid!))).toBe('hash')
  })

  it('is Secure when the request came over https through the proxy (X-Forwarded-Proto)', async () => {
    const c = new Client(shop.app)
    const res = await c.request('PUT', '/api/cart/items/1', { quantity: 1 }, { 'x-forwarded-proto': 'https' })
    expect(setCookieHeader(res)).toContain('Secure')
    const again = await c.request('GET', '/api/cart', undefined, { 'x-forwarded-proto': 'http' })
    expect(setCookieHeader(again)).not.toContain('Secure')
  })

  it('costs no Redis call and sets no cookie for requests without one (or with a malformed one)', async () => {
    const spy = vi.spyOn(shop.deps.redis, 'sendCommand')
    try {
      for (const cookie of [undefined, 'fleet_sid=short', 'fleet_sid=../../etc']) {
        const res = await shop.app.inject({
          method: 'GET',
          url: '/api/cart',
          headers: cookie ? { cookie } : {},
        })
        expect(res.statusCode).toBe(200)
        expect(res.json()).toEqual({ items: [], count: 0, totals: {} })
        expect(setCookieHeader(res)).toBeUndefined()
        expect((await shop.app.inject({ method: 'GET', url: '/api/products?limit=1' })).statusCode).toBe(200)
      }
      expect(spy).not.toHaveBeenCalled()
    } finally {
      spy.mockRestore()
    }
  })
})

describe('session lifecycle', () => {
  it('rolls: each use renews the TTL in Redis and the cookie', async () => {
    const { client } = await customer(shop.app)
    await shop.deps.redis.pexpire(key(client.sid!), 5_000)
    expect(await shop.deps.redis.pttl(key(client.sid!))).toBeLessThanOrEqual(5_000)
    const res = await client.request('GET', '/api/me')
    expect(res.statusCode).toBe(200)
    expect(await shop.deps.redis.pttl(key(client.sid!))).toBeGreaterThan(TTL_MS - 60_000)
    expect(setCookieHeader(res)).toContain(`Max-Age=${TTL_MS / 1000}`)
  })

  it('expires: a session gone from Redis is logged out, and a write starts a new one', async () => {
    const { client } = await customer(shop.app)
    const old = client.sid!
    await shop.deps.redis.del(key(old))
    const me = await client.request('GET', '/api/me')
    expect(me.statusCode).toBe(401)
    expect(setCookieHeader(me)).toMatch(/^fleet_sid=;.*Expires=Thu, 01 Jan 1970/)
    expect(client.sid).toBeUndefined()
    const put = await client.request('PUT', '/api/cart/items/2', { quantity: 1 })
    expect(put.statusCode).toBe(200)
    expect(client.sid).toBeDefined()
    expect(client.sid).not.toBe(old)
    expect(await shop.deps.redis.exists(key(old))).toBe(0)
  })

  it('regenerates the id on login: the old id is destroyed, the cart moves over', async () => {
    const signup = new Client(shop.app)
    await signup.request('POST', '/api/users', { email: 'regen@example.test', password: 'regen-password' })
    const c = new Client(shop.app)
    await c.request('PUT', '/api/cart/items/3', { quantity: 2 })
    const anonymous = c.sid!
    const login = await c.login('regen@example.test', 'regen-password')
    expect(login.statusCode).toBe(200)
    expect(c.sid).toBeDefined()
    expect(c.sid).not.toBe(anonymous)
    expect(await shop.deps.redis.exists(key(anonymous))).toBe(0)
    const cart = (await c.request('GET', '/api/cart')).json()
    expect(cart.items.map((l: { productId: number; quantity: number }) => [l.productId, l.quantity])).toEqual(
      [[3, 2]],
    )
    // The old id is worthless now.
    const stale = await shop.app.inject({
      method: 'GET',
      url: '/api/me',
      headers: { cookie: `fleet_sid=${anonymous}` },
    })
    expect(stale.statusCode).toBe(401)
  })

  it('is destroyed on logout: the key is deleted, the cookie cleared, replaying it gives 401', async () => {
    const { client } = await customer(shop.app)
    const sid = client.sid!
    const out = await client.request('DELETE', '/api/session')
    expect(out.statusCode).toBe(204)
    expect(setCookieHeader(out)).toMatch(/^fleet_sid=;.*Expires=Thu, 01 Jan 1970/)
    expect(await shop.deps.redis.exists(key(sid))).toBe(0)
    const replay = await shop.app.inject({
      method: 'GET',
      url: '/api/me',
      headers: { cookie: `fleet_sid=${sid}` },
    })
    expect(replay.statusCode).toBe(401)
    expect(replay.json().error.code).toBe('FLEET_E_HTTP_UNAUTHENTICATED')
    // Logging out without a session is fine too.
    expect((await new Client(shop.app).request('DELETE', '/api/session')).statusCode).toBe(204)
  })
})

describe('concurrent changes to one session', () => {
  it('keeps every cart line when requests change different lines at once', async () => {
    const ITERATIONS = 30
    const LINES = [2, 3, 4, 5, 6]
    for (let i = 0; i < ITERATIONS; i++) {
      const c = new Client(shop.app)
      await c.request('PUT', '/api/cart/items/1', { quantity: 1 })
      const sid = c.sid!
      const results = await Promise.all(
        LINES.map((productId) =>
          shop.app.inject({
            method: 'PUT',
            url: `/api/cart/items/${productId}`,
            payload: { quantity: 1 + (i % 3) },
            headers: { cookie: `fleet_sid=${sid}` },
          }),
        ),
      )
      expect(results.map((r) => r.statusCode)).toEqual(LINES.map(() => 200))
      const cart = (await c.request('GET', '/api/cart')).json()
      expect(cart.items.map((l: { productId: number }) => l.productId)).toEqual([1, ...LINES])
      expect(cart.count).toBe(1 + LINES.length * (1 + (i % 3)))
      expect(c.sid).toBe(sid)
    }
  })
})

describe('store outage', () => {
  it('turns a Redis failure into 503 FLEET_E_HTTP_UNAVAILABLE, not a crash', async () => {
    const dead = connectRedis(`redis://127.0.0.1:${await freePort()}`, { failFast: true })
    try {
      const store = new SessionStore(dead, { prefix: 'x:', ttlMs: 1000 })
      for (const op of [() => store.load('a'.repeat(43)), () => store.create({ a: '1' })]) {
        await expect(op()).rejects.toMatchObject({ code: 'FLEET_E_HTTP_UNAVAILABLE', statusCode: 503 })
      }
    } finally {
      dead.disconnect()
    }
  })
})
