import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { authenticate, ensureAdmin } from '../../apps/shop/accounts.js'
import { hashPassword, UNUSABLE_PASSWORD_HASH, verifyPassword } from '../../apps/shop/passwords.js'
import type { TestApp } from '../support/app.js'
import { ADMIN, admin, Client, createShop } from './helpers.js'

let shop: TestApp
beforeAll(async () => {
  shop = await createShop({ products: 0 })
})
afterAll(async () => {
  await shop?.close()
})

describe('passwords', () => {
  it('hash with a per-user salt and verify in constant time', async () => {
    const a = await hashPassword('correct horse battery')
    const b = await hashPassword('correct horse battery')
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$[\w-]+\$[\w-]+$/)
    expect(a).not.toBe(b)
    expect(await verifyPassword('correct horse battery', a)).toBe(true)
    expect(await verifyPassword('correct horse batterY', a)).toBe(false)
    expect(await verifyPassword('anything at all', UNUSABLE_PASSWORD_HASH)).toBe(false)
    expect(await verifyPassword('anything at all', 'scrypt$1$1$1$x$y')).toBe(false)
  })
})

describe('accounts', () => {
  it('signs up, logs in, shows /api/me, logs out', async () => {
    const c = new Client(shop.app)
    const created = await c.request('POST', '/api/users', {
      email: 'Alice@Example.test',
      password: 'twelve chars!',
    })
    expect(created.statusCode).toBe(201)
    expect(created.json()).toEqual({ id: expect.any(Number), email: 'alice@example.test', role: 'customer' })
    expect(created.body).not.toContain('scrypt')

    expect((await c.request('GET', '/api/me')).statusCode).toBe(401)
    const login = await c.login('ALICE@example.test', 'twelve chars!')
    expect(login.statusCode).toBe(200)
    expect(login.json().email).toBe('alice@example.test')
    const me = await c.request('GET', '/api/me')
    expect(me.statusCode).toBe(200)
    expect(me.json()).toEqual(created.json())

    const out = await c.request('DELETE', '/api/session')
    expect(out.statusCode).toBe(204)
    expect(c.sid).toBeUndefined()
    expect((await c.request('GET', '/api/me')).statusCode).toBe(401)
  })

  it('refuses a taken email (any case) with 409', async () => {
    const c = new Client(shop.app)
    const body = { email: 'bob@example.test', password: 'bob-password-1' }
    expect((await c.request('POST', '/api/users', body)).statusCode).toBe(201)
    const again = await c.request('POST', '/api/users', { ...body, email: 'BOB@example.test' })
    expect(again.statusCode).toBe(409)
    expect(again.json().error).toMatchObject({
      code: 'FLEET_E_SHOP_EMAIL_TAKEN',
      details: { field: 'email' },
    })
  })

  it('names the bad field: short password, bad email, missing field', async () => {
    const c = new Client(shop.app)
    const short = await c.request('POST', '/api/users', { email: 'carol@example.test', password: 'short' })
    expect(short.statusCode).toBe(400)
    expect(short.json().error).toMatchObject({
      code: 'FLEET_E_HTTP_VALIDATION',
      details: { field: 'password' },
    })
    const email = await c.request('POST', '/api/users', {
      email: 'not-an-email',
      password: 'long enough pass',
    })
    expect(email.statusCode).toBe(400)
    expect(email.json().error.details.field).toBe('email')
    const missing = await c.request('POST', '/api/session', { email: 'carol@example.test' })
    expect(missing.statusCode).toBe(400)
    expect(missing.json().error.details.field).toBe('password')
  })

  it('refuses a text/plain body (a cross-site <form enctype="text/plain">) with 415 on every JSON route, and creates no user', async () => {
    const email = 'mallory-form@example.test'
    const body = JSON.stringify({ email, password: 'a long enough password' })
    const plain = await shop.app.inject({
      method: 'POST',
      url: '/api/users',
      payload: body,
      headers: { 'content-type': 'text/plain' },
    })
    expect(plain.statusCode).toBe(415)
    expect(plain.json().error.code).toBe('FLEET_E_HTTP_UNSUPPORTED_MEDIA_TYPE')
    const { rows } = await shop.deps.db.query('SELECT 1 FROM users WHERE email = $1', [email])
    expect(rows).toEqual([])
    // The same on the other JSON write routes, for a logged-in admin whose browser sends the cookie.
    const boss = await admin(shop.app)
    const routes: ['POST' | 'PUT' | 'PATCH', string][] = [
      ['POST', '/api/session'],
      ['PUT', '/api/cart/items/1'],
      ['POST', '/api/products/1/reviews'],
      ['POST', '/api/products'],
      ['PATCH', '/api/products/1'],
    ]
    for (const [method, url] of routes) {
      const res = await boss.request(method, url, '{"quantity":1}', {
        'content-type': 'text/plain;charset=UTF-8',
      })
      expect(res.statusCode, `${method} ${url}`).toBe(415)
      expect(res.json().error.code).toBe('FLEET_E_HTTP_UNSUPPORTED_MEDIA_TYPE')
    }
    // application/json still signs up.
    const json = await shop.app.inject({
      method: 'POST',
      url: '/api/users',
      payload: body,
      headers: { 'content-type': 'application/json; charset=utf-8' },
    })
    expect(json.statusCode).toBe(201)
  })

  it('answers 401 for a wrong password and for an unknown email, with the same code', async () => {
    const c = new Client(shop.app)
    await c.request('POST', '/api/users', { email: 'dave@example.test', password: 'dave-password-1' })
    const wrong = await c.login('dave@example.test', 'dave-password-2')
    const unknown = await c.login('nobody@example.test', 'dave-password-1')
    for (const res of [wrong, unknown]) {
      expect(res.statusCode).toBe(401)
      expect(res.json().error.code).toBe('FLEET_E_SHOP_INVALID_CREDENTIALS')
    }
    expect(c.sid).toBeUndefined()
  })

  it('seed users cannot log in', async () => {
    await shop.deps.db.query(`INSERT INTO users (email, password_hash) VALUES ('seeded@x.test', $1)`, [
      UNUSABLE_PASSWORD_HASH,
    ])
    await expect(authenticate(shop.deps.db, 'seeded@x.test', UNUSABLE_PASSWORD_HASH)).rejects.toMatchObject({
      code: 'FLEET_E_SHOP_INVALID_CREDENTIALS',
    })
  })
})

describe('ensureAdmin', () => {
  it('created the admin at start; concurrent calls are an upsert; a new password replaces the old', async () => {
    const a = await admin(shop.app)
    expect((await a.request('GET', '/api/me')).json().role).toBe('admin')

    const config = { adminEmail: ADMIN.email, adminPassword: 'a-brand-new-password' }
    const results = await Promise.all([1, 2, 3, 4].map(() => ensureAdmin(shop.deps.db, config)))
    expect(new Set(results.map((r) => r?.id)).size).toBe(1)
    const { rows } = await shop.deps.db.query(
      'SELECT count(*)::int AS n FROM users WHERE lower(email) = $1',
      [ADMIN.email],
    )
    expect(rows[0].n).toBe(1)
    expect((await new Client(shop.app).login(ADMIN.email, ADMIN.password)).statusCode).toBe(401)
    expect((await new Client(shop.app).login(ADMIN.email, 'a-brand-new-password')).statusCode).toBe(200)

    // A customer account with the admin's email is promoted.
    await new Client(shop.app).request('POST', '/api/users', {
      email: 'promote@example.test',
      password: 'customer-password',
    })
    const promoted = await ensureAdmin(shop.deps.db, {
      adminEmail: 'promote@example.test',
      adminPassword: 'customer-password',
    })
    expect(promoted?.role).toBe('admin')
    expect(
      await ensureAdmin(shop.deps.db, { adminEmail: undefined, adminPassword: undefined }),
    ).toBeUndefined()
  })
})
