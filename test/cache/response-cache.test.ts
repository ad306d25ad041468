/**
 * Cached responses on real Redis and PostgreSQL, through a real Fastify route per "server": one command per
 * hit, 304s from the head, invalidation through every nested read's tags, no stale set, one build across
 * servers, cached client errors, and the bypass.
 */
import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { defineResponse } from '../../src/cache/responses.js'
import { FleetError } from '../../src/errors.js'
import type { Redis } from '../../src/redis/connect.js'
import { hooks, TestPage } from './objects.js'
import { createFixture, eventually, type Fixture, gate, lockWaits, type Server, seed } from './support.js'

class NoSuchPageError extends FleetError {
  static override code = 'FLEET_E_TEST_NO_SUCH_PAGE'
  static override statusCode = 404
}

const built = { count: 0, afterNested: async (_id: number): Promise<void> => {} }

/** The answer of `GET /pages/:id`: a row read directly, a cached object and a cached query. */
const pageResponse = defineResponse<number>({
  name: 'test.page@1',
  key: (id) => String(id),
  async build(ctx, id) {
    built.count++
    await ctx.depend([`products:${id}`]) // before reading the row from PostgreSQL directly
    const exists = await ctx.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM products WHERE id = $1',
      [id],
    )
    if (exists.rows[0].n === 0) return { error: new NoSuchPageError(`no page ${id}`) }
    const page = await ctx.get(TestPage, id)
    const reviews = await ctx.reader.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM reviews WHERE product_id = $1',
      [id],
    )
    await built.afterNested(id)
    return {
      body: { id: page.id, title: page.title(), reviews: reviews.rows[0].n },
      headers: { 'cache-control': 'no-cache' },
    }
  },
})

let f: Fixture
beforeEach(async () => {
  f = await createFixture()
  hooks.assembled = 0
  hooks.afterProduct = async () => {}
  built.count = 0
  built.afterNested = async () => {}
})
afterEach(async () => {
  await f.cleanup()
})

async function web(s: Server): Promise<FastifyInstance> {
  const app = Fastify()
  app.get<{ Params: { id: string } }>('/pages/:id', (request, reply) =>
    s.cache.respond(request, reply, pageResponse, Number(request.params.id)),
  )
  await app.ready()
  return app
}

/** Commands the connection `redis` sends while `fn` runs (seen by MONITOR on another connection). */
async function commandsOf(redis: Redis, fn: () => Promise<unknown>): Promise<string[]> {
  const addr = /addr=(\S+)/.exec(String(await redis.client('INFO')))?.[1]
  const monitor = await redis.monitor() // a connection of its own
  const seen: string[] = []
  // MONITOR shows commands in the order Redis ran them: once this one is seen, so is every one before it.
  const marker = `commands-of-${randomUUID()}`
  let markerSeen = false
  monitor.on('monitor', (_time: string, args: string[], source: string, database: string) => {
    if (source !== addr && `${database}` !== addr) return
    if (String(args[0]).toUpperCase() === 'ECHO' && args[1] === marker) markerSeen = true
    else if (!markerSeen) seen.push(String(args[0]).toUpperCase())
  })
  try {
    await fn()
    await redis.echo(marker)
    expect(await eventually(async () => markerSeen, 5_000)).toBe(true)
  } finally {
    monitor.disconnect()
  }
  return seen
}

describe('cached responses', () => {
  it('a hit is one Redis command that returns the stored bytes; If-None-Match gets a 304 from the same', async () => {
    const { products } = await seed(f.admin, 1)
    const s = await f.server({ listen: false })
    const app = await web(s)
    const url = `/pages/${products[0]}`
    const miss = await app.inject({ url })
    expect([miss.statusCode, miss.headers['x-cache']]).toEqual([200, 'MISS'])
    expect(miss.json()).toEqual({ id: products[0], title: 'product 0 (Cat)', reviews: 0 })
    expect(miss.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(miss.headers['cache-control']).toBe('no-cache')
    const etag = String(miss.headers.etag)
    expect(etag).toMatch(/^"[\w-]+"$/)
    let hit = await app.inject({ url })
    const sent = await commandsOf(s.redis, async () => {
      hit = await app.inject({ url })
    })
    expect(sent).toEqual(['EVALSHA'])
    expect([hit.statusCode, hit.headers['x-cache'], hit.headers.etag]).toEqual([200, 'HIT', etag])
    expect(hit.body).toBe(miss.body)
    expect(hit.headers['cache-control']).toBe('no-cache')
    let notModified = hit
    const sent304 = await commandsOf(s.redis, async () => {
      notModified = await app.inject({ url, headers: { 'if-none-match': `"other", W/${etag}` } })
    })
    expect(sent304).toEqual(['EVALSHA'])
    expect([notModified.statusCode, notModified.headers['x-cache'], notModified.body]).toEqual([
      304,
      'HIT',
      '',
    ])
    expect(notModified.headers.etag).toBe(etag)
    expect(notModified.headers['cache-control']).toBe('no-cache')
    const other = await app.inject({ url, headers: { 'if-none-match': '"other"' } })
    expect([other.statusCode, other.body]).toEqual([200, miss.body])
    const head = await app.inject({ method: 'HEAD', url })
    expect([head.statusCode, head.headers['x-cache'], head.headers.etag, head.body]).toEqual([
      200,
      'HIT',
      etag,
      '',
    ])
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(miss.body)))
    expect(built.count).toBe(1)
  })

  it('a write to anything a nested read depended on invalidates the response; others do not', async () => {
    const { products, category } = await seed(f.admin, 2)
    const [a, b] = products
    const s = await f.server({ listen: false })
    const app = await web(s)
    const get = async (id: number) => {
      const r = await app.inject({ url: `/pages/${id}` })
      return { status: r.headers['x-cache'], body: r.json() as { title: string; reviews: number } }
    }
    await get(a)
    await get(b)
    await s.db.query(`UPDATE products SET name = 'renamed' WHERE id = $1`, [a]) // the object's own row
    expect(await get(a)).toMatchObject({ status: 'MISS', body: { title: 'renamed (Cat)' } })
    expect((await get(b)).status).toBe('HIT')
    const user = await f.admin.query<{ id: number }>(
      `INSERT INTO users (email, password_hash) VALUES (md5(random()::text) || '@x.y', 'x') RETURNING id`,
    )
    // A review: the cached query's table (and the object's reviews tag).
    await s.db.query('INSERT INTO reviews (product_id, user_id, rating) VALUES ($1, $2, 5)', [
      b,
      user.rows[0].id,
    ])
    expect(await get(b)).toMatchObject({ status: 'MISS', body: { reviews: 1 } })
    expect((await get(b)).status).toBe('HIT')
    // The category, a tag the object found while it was assembled (ctx.depend).
    await s.db.query(`UPDATE categories SET name = 'Shelf' WHERE id = $1`, [category])
    expect(await get(b)).toMatchObject({ status: 'MISS', body: { title: 'product 1 (Shelf)' } })
  })

  it('no stale set: a build that overlaps a write is not stored, whether its nested read hit or missed', async () => {
    const { products } = await seed(f.admin, 1)
    const id = products[0]
    const s = await f.server({ listen: false })
    const app = await web(s)
    // The nested object misses and loads the old row; the write lands before the object is stored.
    hooks.afterProduct = async () => {
      hooks.afterProduct = async () => {}
      await s.db.query(`UPDATE products SET name = 'during-object' WHERE id = $1`, [id])
    }
    expect((await app.inject({ url: `/pages/${id}` })).json().title).toBe('product 0 (Cat)')
    const next = await app.inject({ url: `/pages/${id}` })
    expect([next.headers['x-cache'], next.json().title]).toEqual(['MISS', 'during-object (Cat)'])
    // The nested object hits; the write lands after it was read, before the response is stored.
    await s.db.query(`UPDATE products SET name = 'cached' WHERE id = $1`, [id])
    await s.cache.get(TestPage, id)
    built.afterNested = async () => {
      built.afterNested = async () => {}
      await s.db.query(`UPDATE products SET name = 'during-response' WHERE id = $1`, [id])
    }
    expect((await app.inject({ url: `/pages/${id}` })).json().title).toBe('cached (Cat)')
    const after = await app.inject({ url: `/pages/${id}` })
    expect([after.headers['x-cache'], after.json().title]).toEqual(['MISS', 'during-response (Cat)'])
    expect((await app.inject({ url: `/pages/${id}` })).headers['x-cache']).toBe('HIT')
  })

  it('100 concurrent misses across 3 servers build the response once', async () => {
    const { products } = await seed(f.admin, 1)
    const servers = [
      await f.server({ listen: false }),
      await f.server({ listen: false }),
      await f.server({ listen: false }),
    ]
    const apps = await Promise.all(servers.map(web))
    // The one build is held until the other two servers wait for it (each counts one lock wait).
    const slow = gate()
    built.afterNested = slow.wait
    const requests = Array.from({ length: 100 }, (_, i) =>
      apps[i % 3].inject({ url: `/pages/${products[0]}` }),
    )
    try {
      await slow.reached
      expect(await eventually(async () => (await lockWaits(servers)) >= 2, 10_000)).toBe(true)
    } finally {
      slow.open()
    }
    const answers = await Promise.all(requests)
    expect(new Set(answers.map((r) => r.statusCode))).toEqual(new Set([200]))
    expect(new Set(answers.map((r) => r.body)).size).toBe(1)
    expect(built.count).toBe(1)
  })

  it('a client error the build returns is cached as its coded answer, until the row appears', async () => {
    const { products } = await seed(f.admin, 1)
    const s = await f.server({ listen: false })
    const app = await web(s)
    const missing = products[0] + 1000
    const first = await app.inject({ url: `/pages/${missing}` })
    expect([first.statusCode, first.headers['x-cache']]).toEqual([404, 'MISS'])
    expect(first.json()).toEqual({
      error: { code: 'FLEET_E_TEST_NO_SUCH_PAGE', message: `no page ${missing}` },
    })
    const again = await app.inject({ url: `/pages/${missing}`, headers: { 'if-none-match': '*' } })
    expect([again.statusCode, again.headers['x-cache'], again.body]).toEqual([404, 'HIT', first.body])
    expect(built.count).toBe(1)
    await s.db.query(
      `INSERT INTO products (id, slug, name, price_cents, category_id) OVERRIDING SYSTEM VALUE
       SELECT $1, 'late', 'late', 1, category_id FROM products WHERE id = $2`,
      [missing, products[0]],
    )
    const created = await app.inject({ url: `/pages/${missing}` })
    expect([created.statusCode, created.headers['x-cache']]).toEqual([200, 'MISS'])
  })

  it('FLEET_CACHE=false builds every answer from PostgreSQL (BYPASS), ETag and 304 included', async () => {
    await f.cleanup()
    f = await createFixture({ FLEET_CACHE: 'false' })
    const { products } = await seed(f.admin, 1)
    const app = await web(await f.server({ listen: false }))
    const a = await app.inject({ url: `/pages/${products[0]}` })
    expect([a.statusCode, a.headers['x-cache']]).toEqual([200, 'BYPASS'])
    const b = await app.inject({
      url: `/pages/${products[0]}`,
      headers: { 'if-none-match': String(a.headers.etag) },
    })
    expect([b.statusCode, b.headers['x-cache']]).toEqual([304, 'BYPASS'])
    expect(built.count).toBe(2)
  })
})
