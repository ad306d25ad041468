/**
 * Security headers of the web runtime (src/web/headers.ts; issue #12 item 9, trimmed by issue #16): on every
 * answer, errors and the OpenAPI document included; HSTS only on requests that came over https, and only from
 * a trusted proxy; none of the document-only or obsolete headers helmet adds by default.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import shopApp, { shopRoutes } from '../../apps/shop/index.js'
import { createTestApp, type TestApp } from '../support/app.js'

const CSP = "default-src 'none';frame-ancestors 'none'"

function expectHardened(headers: Record<string, unknown>, what: string): void {
  expect(headers['x-content-type-options'], what).toBe('nosniff')
  expect(headers['x-frame-options'], what).toBe('DENY')
  expect(headers['content-security-policy'], what).toBe(CSP)
  expect(headers['x-powered-by'], what).toBeUndefined()
  for (const gone of [
    'cross-origin-opener-policy',
    'origin-agent-cluster',
    'x-dns-prefetch-control',
    'x-download-options',
    'x-permitted-cross-domain-policies',
    'x-xss-protection',
  ])
    expect(headers[gone], `${what}: ${gone}`).toBeUndefined()
}

describe('security headers', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp([shopRoutes], { app: shopApp })
  })
  afterAll(() => t?.close())

  it('are on every answer: health, JSON, errors, 404s, the OpenAPI document', async () => {
    const answers = {
      healthz: await t.app.inject('/healthz'),
      readyz: await t.app.inject('/readyz'),
      categories: await t.app.inject('/api/categories'),
      validation: await t.app.inject('/api/products?limit=0'),
      unauthenticated: await t.app.inject('/api/me'),
      notFound: await t.app.inject('/no/such/route'),
      tooLarge: await t.app.inject({
        method: 'POST',
        url: '/api/users',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ email: 'a@example.test', password: 'x'.repeat(2 * 1024 * 1024) }),
      }),
      openapi: await t.app.inject('/openapi.json'),
    }
    for (const [what, res] of Object.entries(answers)) expectHardened(res.headers, what)
    expect(answers.validation.statusCode).toBe(400)
    expect(answers.notFound.statusCode).toBe(404)
    expect(answers.tooLarge.statusCode).toBe(413)
    expect(answers.openapi.statusCode).toBe(200)
    expect(answers.openapi.json().openapi).toBe('3.0.3')
    expect(answers.openapi.headers['content-type']).toMatch(/^application\/json/)
  })

  it('let other origins embed the thumbnails, not the JSON API', async () => {
    const { rows } = await t.deps.db.query<{ id: number }>(
      `INSERT INTO categories (slug, name) VALUES ('lamps', 'Lamps') RETURNING id`,
    )
    const product = await t.deps.db.query<{ id: number }>(
      `INSERT INTO products (slug, name, price_cents, category_id) VALUES ('lamp', 'Lamp', 100, $1) RETURNING id`,
      [rows[0].id],
    )
    const id = product.rows[0].id
    await t.deps.db.query(
      `INSERT INTO product_thumbnails (product_id, size, version, width, height, etag, data)
       VALUES ($1, 64, 1, 1, 1, 'abc', '\\x52494646'::bytea)`,
      [id],
    )
    const image = await t.app.inject(`/api/products/${id}/image/64?v=abc`)
    expect(image.statusCode).toBe(200)
    expect(image.headers['content-type']).toBe('image/webp')
    expect(image.headers['cross-origin-resource-policy']).toBe('cross-origin')
    expectHardened(image.headers, 'thumbnail')
    const missing = await t.app.inject(`/api/products/${id}/image/256`)
    expect(missing.statusCode).toBe(404)
    expectHardened(missing.headers, 'missing thumbnail')
    expect((await t.app.inject('/api/categories')).headers['cross-origin-resource-policy']).toBe(
      'same-origin',
    )
  })

  it('send HSTS only on requests that came over https', async () => {
    const plain = await t.app.inject('/healthz')
    expect(plain.headers['strict-transport-security']).toBeUndefined()
    const viaProxy = await t.app.inject({ url: '/healthz', headers: { 'x-forwarded-proto': 'https' } })
    expect(viaProxy.headers['strict-transport-security']).toBe('max-age=31536000')
    const error = await t.app.inject({ url: '/nope', headers: { 'x-forwarded-proto': 'https' } })
    expect(error.headers['strict-transport-security']).toBe('max-age=31536000')
    const httpProxy = await t.app.inject({ url: '/healthz', headers: { 'x-forwarded-proto': 'http' } })
    expect(httpProxy.headers['strict-transport-security']).toBeUndefined()
  })
})

describe('security headers, configured', () => {
  it('ignore X-Forwarded-Proto when the proxy is not trusted, and HSTS can be turned off', async () => {
    const untrusted = await createTestApp([], { env: { FLEET_TRUST_PROXY: 'false' } })
    const off = await createTestApp([], { env: { FLEET_HSTS_MAX_AGE: '0' } })
    const short = await createTestApp([], { env: { FLEET_HSTS_MAX_AGE: '1d' } })
    try {
      const https = { url: '/healthz', headers: { 'x-forwarded-proto': 'https' } }
      const a = await untrusted.app.inject(https)
      expect(a.headers['strict-transport-security']).toBeUndefined()
      expect(a.headers['x-content-type-options']).toBe('nosniff')
      expect((await off.app.inject(https)).headers['strict-transport-security']).toBeUndefined()
      expect((await short.app.inject(https)).headers['strict-transport-security']).toBe('max-age=86400')
    } finally {
      await untrusted.close()
      await off.close()
      await short.close()
    }
  })
})
