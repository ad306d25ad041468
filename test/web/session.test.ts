/**
 * The session of a request loads once however many reads run at once: two concurrent reads both see the
 * stored fields (a race once returned {} to the second, which turned a visitor's job into a 401). Its cookie
 * is sent once per answer, beside cookies the app sets itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, type TestApp } from '../support/app.js'

describe('request.session', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp([
      async (app) => {
        app.post('/remember', async (request) => {
          await request.session.set({ colour: 'teal' })
          return { ok: true }
        })
        app.post('/read-then-write', async (request, reply) => {
          reply.header('set-cookie', 'theme=dark; Path=/') // another cookie of the app's own
          await request.session.all() // sends the session cookie (the session exists)
          await request.session.set({ colour: 'navy' }) // sends it again
          return { ok: true }
        })
        app.get('/both', async (request) => {
          const [user, colour, all] = await Promise.all([
            request.session.user(),
            request.session.get('colour'),
            request.session.all(),
          ])
          return { user: user ?? null, colour: colour ?? null, fields: Object.keys(all).sort() }
        })
      },
    ])
  })
  afterAll(async () => {
    await t?.close()
  })

  it('answers concurrent reads from one load, each with the stored fields', async () => {
    const set = await t.app.inject({ method: 'POST', url: '/remember' })
    const sid = set.cookies.find((c) => c.name === 'fleet_sid')?.value
    expect(sid).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const res = await t.app.inject({ method: 'GET', url: '/both', headers: { cookie: `fleet_sid=${sid}` } })
    expect(res.json()).toEqual({ user: null, colour: 'teal', fields: ['colour', 'created'] })
  })

  it('sends its cookie once per answer however often a request touches it, beside the app’s own cookies', async () => {
    const set = await t.app.inject({ method: 'POST', url: '/remember' })
    const sid = set.cookies.find((c) => c.name === 'fleet_sid')?.value
    const res = await t.app.inject({
      method: 'POST',
      url: '/read-then-write',
      headers: { cookie: `fleet_sid=${sid}` },
    })
    expect(res.statusCode).toBe(200)
    expect(res.cookies.map((c) => c.name).sort()).toEqual(['fleet_sid', 'theme'])
  })
})
