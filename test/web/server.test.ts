import type { AddressInfo } from 'node:net'
import net from 'node:net'
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
        // No body schema: whatever a parser made of the body is echoed.
        app.route({
          method: ['POST', 'PUT', 'PATCH'],
          url: '/any',
          handler: async (request) => ({ body: request.body ?? null }),
        })
        // A route that takes another type registers its parser in its own scope.
        await app.register(async (scope) => {
          scope.addContentTypeParser('text/plain', { parseAs: 'string' }, (_req, body, done) =>
            done(null, body),
          )
          scope.post('/note', async (request) => ({ note: request.body }))
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

  it('parses JSON bodies only: text/plain and other types get 415 on every method, +json types are JSON', async () => {
    const json = JSON.stringify({ name: 'xy', n: 2 })
    for (const method of ['POST', 'PUT', 'PATCH'] as const) {
      for (const type of ['text/plain', 'text/plain; charset=utf-8', 'multipart/form-data; boundary=x']) {
        const res = await t.app.inject({
          method,
          url: '/any',
          payload: json,
          headers: { 'content-type': type },
        })
        expect(res.statusCode, `${method} ${type}`).toBe(415)
        expect(res.json().error.code).toBe('FLEET_E_HTTP_UNSUPPORTED_MEDIA_TYPE')
        expect(res.json().error.message).toContain(JSON.stringify(type))
      }
      const none = await t.app.inject({ method, url: '/any', payload: json })
      expect(none.statusCode).toBe(415)
      expect(none.json().error.message).toBe('a body needs a Content-Type; send application/json')
      for (const type of ['application/json', 'application/merge-patch+json; charset=utf-8']) {
        const res = await t.app.inject({
          method,
          url: '/any',
          payload: json,
          headers: { 'content-type': type },
        })
        expect(res.statusCode, `${method} ${type}`).toBe(200)
        expect(res.json()).toEqual({ body: { name: 'xy', n: 2 } })
      }
    }
    // A schema route refuses it before validation: 415, not a 400 about the body's shape.
    const plain = await t.app.inject({
      method: 'POST',
      url: '/echo',
      payload: json,
      headers: { 'content-type': 'text/plain' },
    })
    expect(plain.statusCode).toBe(415)
    // A route that registered a parser for another type in its scope keeps it.
    const note = await t.app.inject({
      method: 'POST',
      url: '/note',
      payload: 'hello',
      headers: { 'content-type': 'text/plain' },
    })
    expect(note.json()).toEqual({ note: 'hello' })
  })

  it('lets a client finish sending a body it refused early, then reads its next request on the same connection', async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    const port = (t.app.server.address() as AddressInfo).port
    const big = 5 * 1024 * 1024
    const heads = [
      `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${big}\r\n\r\n`,
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${big}\r\n\r\n`,
    ]
    for (const head of heads) {
      const chunked = head.includes('chunked')
      const out = await new Promise<{ text: string; error?: string }>((resolve) => {
        const s = net.connect({ port, host: '127.0.0.1' })
        let text = ''
        let sentAll = false
        const finish = (error?: string) => {
          s.destroy()
          resolve({ text, error })
        }
        s.on('data', (d: Buffer) => {
          text += d.toString('latin1')
          // The second answer (to the request sent after the whole refused body) ends the exchange.
          if (sentAll && /HTTP\/1\.1 200 [\s\S]*"name":"xy"/.test(text)) finish()
        })
        s.on('error', (err: Error & { code?: string }) => finish(err.code ?? err.message))
        s.write(head)
        // The whole body, whatever comes back meanwhile (as a client that does not read while sending).
        const piece = Buffer.alloc(64 * 1024, 'a')
        let sent = 0
        const pump = (): void => {
          while (sent < big) {
            sent += piece.length
            const bytes = chunked
              ? Buffer.concat([Buffer.from('10000\r\n'), piece, Buffer.from('\r\n')])
              : piece
            if (!s.write(bytes)) {
              s.once('drain', pump)
              return
            }
          }
          const next = JSON.stringify({ name: 'xy', n: 2 })
          s.write(
            `${chunked ? '0\r\n\r\n' : ''}POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${next.length}\r\n\r\n${next}`,
          )
          sentAll = true
        }
        pump()
        setTimeout(() => finish('timeout'), 10_000)
      })
      expect(out.error, head).toBeUndefined()
      expect(out.text).toMatch(/^HTTP\/1\.1 41[35] /)
      expect(out.text.split('\r\n\r\n')[0]).not.toMatch(/connection: close/i)
      expect(out.text).toMatch(/HTTP\/1\.1 200 /)
    }
  }, 30_000)

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
