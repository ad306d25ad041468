import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestApp } from '../support/app.js'
import { admin, Client, createShop, customer } from './helpers.js'

let shop: TestApp
let boss: Client
let someone: Client
const newProduct = { name: 'Test Lamp', priceCents: 1999, stock: 3, categoryId: 2 }

beforeAll(async () => {
  shop = await createShop({ products: 10, reviews: 20 })
  boss = await admin(shop.app)
  someone = (await customer(shop.app)).client
})
afterAll(async () => {
  await shop?.close()
})

describe('admin authorization', () => {
  it('answers 401 without a session and 403 for a customer, on every admin route', async () => {
    const anonymous = new Client(shop.app)
    const calls: [Parameters<Client['request']>[0], string, unknown][] = [
      ['POST', '/api/products', newProduct],
      ['PATCH', '/api/products/1', { stock: 1 }],
      ['DELETE', '/api/products/1', undefined],
    ]
    for (const [method, url, body] of calls) {
      const a = await anonymous.request(method, url, body)
      expect(a.statusCode, `${method} ${url}`).toBe(401)
      expect(a.json().error.code).toBe('FLEET_E_HTTP_UNAUTHENTICATED')
      const c = await someone.request(method, url, body)
      expect(c.statusCode, `${method} ${url}`).toBe(403)
      expect(c.json().error.code).toBe('FLEET_E_HTTP_FORBIDDEN')
    }
    expect((await anonymous.request('GET', '/api/products/1')).json().version).toBe(1)
  })
})

describe('product versions', () => {
  it('creates at version 1 and increments on every change, with the version in body and ETag', async () => {
    const created = await boss.request('POST', '/api/products', newProduct)
    expect(created.statusCode).toBe(201)
    const p = created.json()
    expect(p).toMatchObject({
      ...newProduct,
      slug: 'test-lamp',
      version: 1,
      currency: 'EUR',
      description: '',
    })
    expect(created.headers.location).toBe(`/api/products/${p.id}`)
    expect(created.headers.etag).toBe('"1"')

    const first = await boss.request('PATCH', `/api/products/${p.id}`, { priceCents: 2499 })
    expect(first.statusCode).toBe(200)
    expect(first.json()).toMatchObject({ priceCents: 2499, version: 2, name: 'Test Lamp' })
    expect(first.headers.etag).toBe('"2"')
    expect(Date.parse(first.json().updatedAt)).toBeGreaterThanOrEqual(Date.parse(p.updatedAt))

    const second = await boss.request('PATCH', `/api/products/${p.id}`, { stock: 9 }, { 'if-match': '"2"' })
    expect(second.json()).toMatchObject({ stock: 9, version: 3 })

    const stale = await boss.request('PATCH', `/api/products/${p.id}`, { stock: 1 }, { 'if-match': '"2"' })
    expect(stale.statusCode).toBe(409)
    expect(stale.json().error).toMatchObject({
      code: 'FLEET_E_SHOP_VERSION_MISMATCH',
      details: { expected: 2, current: 3 },
    })
    const staleBody = await boss.request('PATCH', `/api/products/${p.id}`, { stock: 1, expectedVersion: 1 })
    expect(staleBody.statusCode).toBe(409)
    const okBody = await boss.request('PATCH', `/api/products/${p.id}`, { stock: 1, expectedVersion: 3 })
    expect(okBody.json().version).toBe(4)

    const page = await boss.request('GET', `/api/products/${p.id}`)
    expect(page.json()).toMatchObject({ version: 4, stock: 1, priceCents: 2499 })

    const wrongDelete = await boss.request('DELETE', `/api/products/${p.id}`, undefined, {
      'if-match': '"3"',
    })
    expect(wrongDelete.statusCode).toBe(409)
    const deleted = await boss.request('DELETE', `/api/products/${p.id}`, undefined, { 'if-match': 'W/"4"' })
    expect(deleted.statusCode).toBe(200)
    expect(deleted.json()).toEqual({ id: p.id, version: 5, deleted: true })
    expect((await boss.request('GET', `/api/products/${p.id}`)).statusCode).toBe(404)
    expect((await boss.request('DELETE', `/api/products/${p.id}`)).statusCode).toBe(404)
    expect((await boss.request('PATCH', `/api/products/${p.id}`, { stock: 1 })).statusCode).toBe(404)
  })

  it('derives a free slug from the name when none is given', async () => {
    const body = { ...newProduct, name: 'Same Name Twice' }
    const [one, two] = [
      await boss.request('POST', '/api/products', body),
      await boss.request('POST', '/api/products', body),
    ]
    expect([one.statusCode, two.statusCode]).toEqual([201, 201])
    expect(one.json().slug).toBe('same-name-twice')
    expect(two.json().slug).toMatch(/^same-name-twice-[0-9a-f]{6}$/)
    const odd = await boss.request('POST', '/api/products', { ...newProduct, name: '!!!' })
    expect(odd.json().slug).toBe('product')
  })

  it('concurrent PATCHes each get their own version', async () => {
    const p = (await boss.request('POST', '/api/products', { ...newProduct, slug: 'concurrent' })).json()
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map((stock) => boss.request('PATCH', `/api/products/${p.id}`, { stock })),
    )
    expect(results.map((r) => r.json().version).sort()).toEqual([2, 3, 4, 5, 6])
  })

  it('reports conflicts and bad input precisely', async () => {
    const taken = (await boss.request('GET', '/api/products/1')).json().slug
    const slug = await boss.request('POST', '/api/products', { ...newProduct, slug: taken })
    expect(slug.statusCode).toBe(409)
    expect(slug.json().error).toMatchObject({ code: 'FLEET_E_SHOP_SLUG_TAKEN', details: { field: 'slug' } })

    const cat = await boss.request('POST', '/api/products', { ...newProduct, slug: 'x', categoryId: 9999 })
    expect(cat.statusCode).toBe(400)
    expect(cat.json().error).toMatchObject({
      code: 'FLEET_E_SHOP_UNKNOWN_CATEGORY',
      details: { field: 'categoryId' },
    })
    const patchCat = await boss.request('PATCH', '/api/products/1', { categoryId: 9999 })
    expect(patchCat.json().error.details.field).toBe('categoryId')

    const cases: [unknown, string][] = [
      [{ ...newProduct, priceCents: -1 }, 'priceCents'],
      [{ ...newProduct, name: undefined }, 'name'],
      [{ ...newProduct, slug: 'Not A Slug' }, 'slug'],
      [{ ...newProduct, currency: 'euro' }, 'currency'],
      [{ ...newProduct, stock: 1.5 }, 'stock'],
    ]
    for (const [body, field] of cases) {
      const res = await boss.request('POST', '/api/products', body)
      expect(res.statusCode, field).toBe(400)
      expect(res.json().error, field).toMatchObject({ code: 'FLEET_E_HTTP_VALIDATION', details: { field } })
    }
    expect((await boss.request('PATCH', '/api/products/1', {})).statusCode).toBe(400)
    expect((await boss.request('PATCH', '/api/products/1', { colour: 'red' })).statusCode).toBe(400)
    const ifMatch = await boss.request('PATCH', '/api/products/1', { stock: 2 }, { 'if-match': 'banana' })
    expect(ifMatch.statusCode).toBe(400)
    expect(ifMatch.json().error).toMatchObject({
      code: 'FLEET_E_SHOP_INVALID_IF_MATCH',
      details: { field: 'If-Match' },
    })
    expect((await boss.request('GET', '/api/products/1')).json().version).toBe(1)
  })
})
