import { Type } from '@sinclair/typebox'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, type TestApp } from '../support/app.js'

describe('web runtime (in process)', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp([
      async (app) => {
        app.post(
          '/echo',
          {
            schema: {
              body: Type.Object(
                { name: Type.String({ minLength: 2 }), n: Type.Integer({ minimum: 1 }) },
                { additionalProperties: false },
              ),
              querystring: Type.Object({ page: Type.Optional(Type.Integer({ minimum: 1 })) }),
            },
          },
          async (request) => ({ ...(request.body as object), query: request.query }),
        )
        app.get('/boom', async () => {
          throw new Error('secret detail')
        })
      },
    ])
  })
  afterAll(() => t.close())

  it('answers /healthz and /readyz, and turns unready while draining', async () => {
    expect((await t.app.inject('/healthz')).json()).toEqual({ status: 'ok', instance: 'web-test' })
    const ready = await t.app.inject('/readyz')
    expect(ready.statusCode).toBe(200)
    expect(ready.json()).toMatchObject({
      status: 'ready',
      checks: { postgres: 'ok', redis: 'ok', cache: 'ok' },
    })
    t.readiness.draining = true
    const draining = await t.app.inject('/readyz')
    t.readiness.draining = false
    expect(draining.statusCode).toBe(503)
    expect(draining.json().status).toBe('draining')
  })

  it('keeps a valid X-Request-Id, replaces an invalid one, and names the server', async () => {
    const kept = await t.app.inject({ url: '/healthz', headers: { 'x-request-id': 'abc-123' } })
    expect(kept.headers['x-request-id']).toBe('abc-123')
    expect(kept.headers['x-served-by']).toBe('web-test')
    const replaced = await t.app.inject({ url: '/healthz', headers: { 'x-request-id': 'bad id\u00e9' } })
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('answers every failure with the error format and a stable code', async () => {
    const notFound = await t.app.inject('/nope?x=1')
    expect(notFound.statusCode).toBe(404)
    expect(notFound.json()).toEqual({
      error: { code: 'FLEET_E_HTTP_NOT_FOUND', message: 'no route for GET /nope' },
    })

    const invalid = await t.app.inject({ method: 'POST', url: '/echo', payload: { name: 'x', n: 1 } })
    expect(invalid.statusCode).toBe(400)
    expect(invalid.json().error.code).toBe('FLEET_E_HTTP_VALIDATION')
    expect(invalid.json().error.details.field).toBe('name')

    const missing = await t.app.inject({ method: 'POST', url: '/echo', payload: { name: 'xy' } })
    expect(missing.json().error.details.field).toBe('n')

    // JSON bodies are not coerced: "2" is not an integer. Unknown fields are named.
    const text = await t.app.inject({ method: 'POST', url: '/echo', payload: { name: 'xy', n: '2' } })
    expect(text.statusCode).toBe(400)
    expect(text.json().error.details.field).toBe('n')
    const extra = await t.app.inject({
      method: 'POST',
      url: '/echo',
      payload: { name: 'xy', n: 2, admin: true },
    })
    expect(extra.statusCode).toBe(400)
    expect(extra.json().error, JSON.stringify(extra.json())).toMatchObject({ details: { field: 'admin' } })

    const badJson = await t.app.inject({
      method: 'POST',
      url: '/echo',
      payload: '{"name":',
      headers: { 'content-type': 'application/json' },
    })
    expect(badJson.statusCode).toBe(400)
    expect(badJson.json().error.code).toBe('FLEET_E_HTTP_BAD_REQUEST')

    const media = await t.app.inject({
      method: 'POST',
      url: '/echo',
      payload: 'name=xy',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    expect(media.statusCode).toBe(415)
    expect(media.json().error.code).toBe('FLEET_E_HTTP_UNSUPPORTED_MEDIA_TYPE')

    const big = await t.app.inject({
      method: 'POST',
      url: '/echo',
      payload: JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024), n: 1 }),
      headers: { 'content-type': 'application/json' },
    })
    expect(big.statusCode).toBe(413)
    expect(big.json().error.code).toBe('FLEET_E_HTTP_BODY_TOO_LARGE')

    const boom = await t.app.inject('/boom')
    expect(boom.statusCode).toBe(500)
    expect(boom.json()).toEqual({ error: { code: 'FLEET_E_INTERNAL', message: 'internal error' } })
  })

  it('coerces query strings to the schema types', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/echo?page=3', payload: { name: 'xy', n: 2 } })
    expect(res.json()).toEqual({ name: 'xy', n: 2, query: { page: 3 } })
    expect(
      (await t.app.inject({ method: 'POST', url: '/echo?page=x', payload: { name: 'xy', n: 2 } })).json()
        .error.details,
    ).toEqual({ field: 'page', in: 'querystring' })
  })

  it('exports Prometheus metrics with a duration histogram by route template and status', async () => {
    await t.app.inject({ method: 'POST', url: '/echo', payload: { name: 'xy', n: 2 } })
    const text = (await t.app.inject('/metrics')).body
    expect(text).toMatch(
      /http_request_duration_seconds_count\{[^}]*method="POST",route="\/echo",status_code="200"\} \d+/,
    )
    expect(text).toContain('process_resident_memory_bytes')
  })

  it('serves an OpenAPI document of the application routes', async () => {
    const doc = (await t.app.inject('/openapi.json')).json()
    expect(doc.openapi).toBe('3.0.3')
    expect(Object.keys(doc.paths)).toContain('/echo')
    expect(Object.keys(doc.paths)).not.toContain('/metrics')
  })
})
