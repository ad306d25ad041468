/**
 * The second line of defence (src/web/refused-value.ts): a route without a schema bound passes the client's
 * value to PostgreSQL, which refuses it as data; the answer is 400 FLEET_E_HTTP_INVALID_VALUE saying what to
 * fix, not a 500. A broken query stays a 500 that says nothing of its SQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, type TestApp } from '../support/app.js'

let t: TestApp

beforeAll(async () => {
  t = await createTestApp([
    async (app, deps) => {
      // Deliberately unvalidated: each casts the raw query text to a column type.
      app.get<{ Querystring: { v: string } }>('/raw/text', async (req) => {
        await deps.db.query('SELECT $1::text', [req.query.v])
        return { ok: true }
      })
      app.get<{ Querystring: { v: string } }>('/raw/int', async (req) => {
        await deps.db.query('SELECT $1::int', [req.query.v])
        return { ok: true }
      })
      app.get<{ Querystring: { v: string } }>('/raw/time', async (req) => {
        await deps.db.query('SELECT $1::timestamptz', [req.query.v])
        return { ok: true }
      })
      app.post<{ Body: unknown }>('/raw/json', async (req) => {
        await deps.db.query('SELECT $1::jsonb', [JSON.stringify(req.body)])
        return { ok: true }
      })
      app.get('/raw/broken', async () => {
        await deps.db.query('SELEC 1')
        return { ok: true }
      })
    },
  ])
})
afterAll(() => t?.close())

describe('values PostgreSQL refuses', () => {
  it('answer 400 FLEET_E_HTTP_INVALID_VALUE with what to fix', async () => {
    const cases: [string, string, RegExp][] = [
      ['/raw/text?v=a%00b', '22021', /NUL characters/],
      ['/raw/int?v=10000000000', '22003', /out of range/],
      ['/raw/int?v=twelve', '22P02', /type its field expects/],
      ['/raw/time?v=9999-99-99T99:99:99.000000Z', '22008', /real date/],
      ['/raw/time?v=yesterday-ish', '22007', /ISO 8601/],
    ]
    for (const [url, sqlstate, says] of cases) {
      const res = await t.app.inject(url)
      expect(res.statusCode, `${url}: ${res.body}`).toBe(400)
      const { error } = res.json()
      expect(error.code, url).toBe('FLEET_E_HTTP_INVALID_VALUE')
      expect(error.details, url).toEqual({ sqlstate })
      expect(error.message, url).toMatch(says)
    }
    const json = await t.app.inject({ method: 'POST', url: '/raw/json', payload: { v: 'a\u0000' } })
    expect(json.statusCode, json.body).toBe(400)
    expect(json.json().error).toMatchObject({
      code: 'FLEET_E_HTTP_INVALID_VALUE',
      details: { sqlstate: '22P05' },
    })
    expect((await t.app.inject('/raw/int?v=12')).statusCode).toBe(200)
  })

  it('leave other database errors a 500 that hides them', async () => {
    const res = await t.app.inject('/raw/broken')
    expect(res.statusCode).toBe(500)
    expect(res.json()).toEqual({ error: { code: 'FLEET_E_INTERNAL', message: 'internal error' } })
  })
})
