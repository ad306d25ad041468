/**
 * Client input that PostgreSQL cannot take (issue #12, item 8): NUL characters in text, cursors whose keys
 * are out of their column's range, integers past int4. Every one is a coded 400 that says what to fix, never
 * a 500; the same request with the value fixed still works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestApp } from '../support/app.js'
import { admin, type Client, createShop, customer } from './helpers.js'

let shop: TestApp
let adminClient: Client
let reviewer: Client
let productId: number

/** A cursor as the API encodes them, with any fields. */
function cursor(...fields: unknown[]): string {
  return Buffer.from(JSON.stringify(fields)).toString('base64url')
}

interface Case {
  name: string
  send: () => Promise<{ statusCode: number; body: string; json: () => unknown }>
  code: string
  field: string
  /** A phrase the message must contain: what to fix. */
  says: RegExp
}

const NUL = '\u0000'
const get = (url: string) => shop.app.inject({ method: 'GET', url })

beforeAll(async () => {
  shop = await createShop({ products: 30, reviews: 60 })
  adminClient = await admin(shop.app)
  reviewer = (await customer(shop.app)).client
  const { rows } = await shop.deps.db.query<{ id: number }>('SELECT id FROM products ORDER BY id LIMIT 1')
  productId = rows[0].id
})
afterAll(async () => {
  await shop?.close()
})

function cases(): Case[] {
  const product = `/api/products/${productId}`
  const newProduct = { name: 'Hostile Lamp', priceCents: 100, categoryId: 1 }
  const nul = /NUL characters \(U\+0000\)/
  const badCursor = /pass the nextCursor of the previous page unchanged/
  return [
    // NUL in text (PostgreSQL's text cannot hold U+0000: "invalid byte sequence for encoding UTF8: 0x00")
    {
      name: 'q with NUL',
      send: () => get('/api/products?q=a%00b'),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'q',
      says: nul,
    },
    {
      name: 'q that is only NUL',
      send: () => get('/api/products?q=%00'),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'q',
      says: nul,
    },
    {
      name: 'category with NUL',
      send: () => get('/api/products?category=%00'),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'category',
      says: nul,
    },
    {
      name: 'review body with NUL',
      send: () => reviewer.request('POST', `${product}/reviews`, { rating: 4, body: `fine${NUL}lamp` }),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'body',
      says: nul,
    },
    {
      name: 'new product name with NUL',
      send: () => adminClient.request('POST', '/api/products', { ...newProduct, name: `Lamp${NUL}` }),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'name',
      says: nul,
    },
    {
      name: 'new product description with NUL',
      send: () => adminClient.request('POST', '/api/products', { ...newProduct, description: NUL }),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'description',
      says: nul,
    },
    {
      name: 'new product slug with NUL',
      send: () => adminClient.request('POST', '/api/products', { ...newProduct, slug: `lamp${NUL}` }),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'slug',
      says: /must match pattern/,
    },
    {
      name: 'patched name with NUL',
      send: () => adminClient.request('PATCH', product, { name: `${NUL}Lamp` }),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'name',
      says: nul,
    },
    {
      name: 'patched description with NUL',
      send: () => adminClient.request('PATCH', product, { description: `a${NUL}` }),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'description',
      says: nul,
    },
    {
      name: 'sign-up email with NUL',
      send: () =>
        shop.app.inject({
          method: 'POST',
          url: '/api/users',
          payload: { email: `a${NUL}@example.test`, password: 'long enough password' },
        }),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'email',
      says: /format "email"/,
    },
    {
      name: 'login email with NUL',
      send: () =>
        shop.app.inject({
          method: 'POST',
          url: '/api/session',
          payload: { email: `a@example.test${NUL}`, password: 'whatever' },
        }),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'email',
      says: /format "email"/,
    },
    // Cursors: every field is checked against its column's type before it reaches SQL.
    {
      name: 'price cursor at 2^31',
      send: () => get(`/api/products?sort=price&cursor=${cursor('sort=price', 2 ** 31, 5)}`),
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      field: 'cursor',
      says: /2147483648 is not an integer within/,
    },
    {
      name: '-price cursor at 2^53',
      send: () => get(`/api/products?sort=-price&cursor=${cursor('sort=-price', 2 ** 53, 5)}`),
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      field: 'cursor',
      says: badCursor,
    },
    {
      name: 'price cursor below -2^31',
      send: () => get(`/api/products?sort=price&cursor=${cursor('sort=price', -(2 ** 31) - 1, 5)}`),
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      field: 'cursor',
      says: badCursor,
    },
    {
      name: 'price cursor with a fraction',
      send: () => get(`/api/products?sort=price&cursor=${cursor('sort=price', 1.5, 5)}`),
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      field: 'cursor',
      says: badCursor,
    },
    {
      name: 'created cursor 9999-99-99T99:99:99',
      send: () =>
        get(
          `/api/products?sort=-created&cursor=${cursor('sort=-created', '9999-99-99T99:99:99.000000Z', 5)}`,
        ),
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      field: 'cursor',
      says: /is not a timestamp such as/,
    },
    {
      name: 'created cursor in year 0',
      send: () => get(`/api/products?cursor=${cursor('sort=-created', '0000-01-01T00:00:00.000000Z', 5)}`),
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      field: 'cursor',
      says: badCursor,
    },
    {
      name: 'created cursor on 29 February of a common year',
      send: () => get(`/api/products?cursor=${cursor('sort=-created', '2023-02-29T00:00:00.000000Z', 5)}`),
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      field: 'cursor',
      says: badCursor,
    },
    {
      name: 'reviews cursor 9999-99-99T99:99:99',
      send: () =>
        get(
          `/api/products/${productId}/reviews?cursor=${cursor(`reviews=${productId}`, '9999-99-99T99:99:99.000000Z', 5)}`,
        ),
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      field: 'cursor',
      says: /is not a timestamp such as/,
    },
    {
      name: 'name cursor "\\u0000"',
      send: () => get(`/api/products?sort=name&cursor=${cursor('sort=name', NUL, 5)}`),
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      field: 'cursor',
      says: /contains a NUL character/,
    },
    {
      name: 'name cursor with a number key',
      send: () => get(`/api/products?sort=name&cursor=${cursor('sort=name', 7, 5)}`),
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      field: 'cursor',
      says: badCursor,
    },
    {
      name: 'cursor with an id past 2^53',
      send: () => get(`/api/products?sort=price&cursor=${cursor('sort=price', 10, 2 ** 64)}`),
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      field: 'cursor',
      says: /is not a positive integer/,
    },
    {
      name: 'cursor whose scope is a NUL',
      send: () => get(`/api/products?sort=price&cursor=${cursor(NUL, 10, 5)}`),
      code: 'FLEET_E_SHOP_INVALID_CURSOR',
      field: 'cursor',
      says: /not a cursor this API issued/,
    },
    // Integers past their column (version is an integer: int4)
    {
      name: 'PATCH expectedVersion 10000000000',
      send: () => adminClient.request('PATCH', product, { stock: 3, expectedVersion: 10_000_000_000 }),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'expectedVersion',
      says: /must be <= 2147483647/,
    },
    {
      name: 'PATCH expectedVersion 2^31',
      send: () => adminClient.request('PATCH', product, { stock: 3, expectedVersion: 2 ** 31 }),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'expectedVersion',
      says: /must be <= 2147483647/,
    },
    {
      name: 'If-Match of ten digits',
      send: () => adminClient.request('PATCH', product, { stock: 3 }, { 'if-match': '"10000000000"' }),
      code: 'FLEET_E_SHOP_INVALID_IF_MATCH',
      field: 'If-Match',
      says: /expected the product's ETag/,
    },
    {
      name: 'product id past 2^53',
      send: () => get('/api/products/99999999999999999999'),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'id',
      says: /must be <=/,
    },
    {
      name: 'cart product id past 2^53',
      send: () => reviewer.request('PUT', '/api/cart/items/99999999999999999999', { quantity: 1 }),
      code: 'FLEET_E_HTTP_VALIDATION',
      field: 'productId',
      says: /must be <=/,
    },
    {
      name: 'category id of twenty digits',
      send: () => get('/api/products?category=99999999999999999999'),
      code: 'FLEET_E_SHOP_UNKNOWN_CATEGORY',
      field: 'category',
      says: /GET \/api\/categories lists them/,
    },
  ]
}

describe('hostile input to the shop', () => {
  it('answers every one with a coded 400 that says what to fix, never a 500', async () => {
    const all = cases()
    const answers: string[] = []
    for (const c of all) {
      const res = await c.send()
      answers.push(`${c.name}: ${res.statusCode}`)
      expect(res.statusCode, `${c.name}: ${res.body}`).toBe(400)
      const error = (res.json() as { error: { code: string; message: string; details: { field: string } } })
        .error
      expect(error.code, c.name).toBe(c.code)
      expect(error.details.field, c.name).toBe(c.field)
      expect(error.message, c.name).toMatch(c.says)
    }
    expect(answers.filter((a) => !a.endsWith(': 400'))).toEqual([])
    expect(all.length).toBeGreaterThanOrEqual(29)
  })

  it('still serves the same requests with the value fixed', async () => {
    expect((await get('/api/products?q=lamp')).statusCode).toBe(200)
    expect((await get('/api/products?category=1')).statusCode).toBe(200)
    const page = (await get('/api/products?sort=name&limit=2')).json() as { nextCursor: string }
    expect((await get(`/api/products?sort=name&cursor=${page.nextCursor}`)).statusCode).toBe(200)
    const leap = cursor('sort=-created', '2024-02-29T23:59:59.999999Z', 5)
    expect((await get(`/api/products?cursor=${leap}`)).statusCode).toBe(200)
    const top = cursor('sort=price', 2 ** 31 - 1, 5)
    expect((await get(`/api/products?sort=price&cursor=${top}`)).statusCode).toBe(200)
    const patched = await adminClient.request('PATCH', `/api/products/${productId}`, {
      description: 'tab\tand é and 🙂',
      expectedVersion: 2 ** 31 - 1,
    })
    expect(patched.statusCode, patched.body).toBe(409) // in range: the version check itself answers
    expect((patched.json() as { error: { code: string } }).error.code).toBe('FLEET_E_SHOP_VERSION_MISMATCH')
    const review = await reviewer.request('POST', `/api/products/${productId}/reviews`, {
      rating: 5,
      body: 'no NUL here',
    })
    expect(review.statusCode).toBe(201)
  })

  it('documents the NUL rule in the OpenAPI document', async () => {
    const doc = (await get('/openapi.json')).json() as {
      paths: Record<string, Record<string, { parameters?: { name: string; schema: { pattern?: string } }[] }>>
    }
    const q = doc.paths['/api/products'].get.parameters?.find((p) => p.name === 'q')
    expect(q?.schema.pattern).toBe('^[^\\u0000]*$')
  })
})
