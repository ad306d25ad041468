/**
 * The history checker: writers and readers on three servers, random delays injected into every query the
 * cache's loaders run, and the whole history checked afterwards. Reads go through the query cache, the object
 * cache, and cached responses built on each. A violation is a read that began after a
 * write of the same row was acknowledged and returned an older version. It must never happen.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { AssembleContext, ObjectSpec } from '../../src/cache/cache.js'
import { defineResponse } from '../../src/cache/responses.js'
import { Database, type QueryResult, type Row } from '../../src/db/database.js'
import { createFixture, type Fixture, type Server, seed } from './support.js'

/** Fault injection: every query answers after a random delay (so a slow read can overlap writes). */
class ChaosDatabase extends Database {
  override async query<R extends Row = Row>(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<QueryResult<R>> {
    const r = await super.query<R>(sql, params)
    await new Promise((res) => setTimeout(res, Math.random() * 25))
    return r
  }
}

class Versioned {
  id = 0
  version = 0
  static cache: ObjectSpec<Versioned, number> = {
    name: 'Versioned',
    key: (id) => String(id),
    tags: (id) => [`products:${id}`],
    async assemble(ctx: AssembleContext, id: number) {
      const r = await ctx.db.query<{ version: number }>('SELECT version FROM products WHERE id = $1', [id])
      return Object.assign(new Versioned(), { id, version: r.rows[0].version })
    },
  }
}

/** Cached responses of the same row: one built on the cached object, one on a cached query. */
const fromObject = defineResponse<number>({
  name: 'test.versioned-object',
  key: (id) => String(id),
  build: async (ctx, id) => ({ body: { version: (await ctx.get(Versioned, id)).version } }),
})
const fromQuery = defineResponse<number>({
  name: 'test.versioned-query',
  key: (id) => String(id),
  async build(ctx, id) {
    const r = await ctx.reader.query<{ version: number }>('SELECT version FROM products WHERE id = $1', [id])
    return { body: { version: r.rows[0].version } }
  },
})

/** A Fastify app answering both responses from `server`'s cache. */
async function webOf(server: Server): Promise<FastifyInstance> {
  const app = Fastify()
  app.get<{ Params: { id: string } }>('/object/:id', (request, reply) =>
    server.cache.respond(request, reply, fromObject, Number(request.params.id)),
  )
  app.get<{ Params: { id: string } }>('/query/:id', (request, reply) =>
    server.cache.respond(request, reply, fromQuery, Number(request.params.id)),
  )
  await app.ready()
  return app
}

interface Write {
  id: number
  version: number
  ackedAt: number
}
interface Read {
  id: number
  version: number
  startedAt: number
  status: string
}

let f: Fixture
beforeEach(async () => {
  f = await createFixture()
})
afterEach(async () => {
  await f.cleanup()
})

async function run(servers: Server[], writers: Database[], ids: number[], ms: number) {
  const writes: Write[] = []
  const reads: Read[] = []
  const apps = new Map(await Promise.all(servers.map(async (s) => [s, await webOf(s)] as const)))
  const deadline = performance.now() + ms
  const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]
  const writer = async () => {
    for (let i = 0; i < 200 && performance.now() < deadline; i++) {
      const id = pick(ids)
      const r = await pick(writers).query<{ version: number }>(
        'UPDATE products SET version = version + 1 WHERE id = $1 RETURNING version',
        [id],
      )
      writes.push({ id, version: r.rows[0].version, ackedAt: performance.now() })
      await new Promise((res) => setTimeout(res, Math.random() * 20))
    }
  }
  const reader = async () => {
    for (let i = 0; i < 2_000 && performance.now() < deadline; i++) {
      const id = pick(ids)
      const s = pick(servers)
      const startedAt = performance.now()
      const way = Math.random()
      if (way < 0.25) {
        const r = await s.cache.query<{ version: number }>('SELECT version FROM products WHERE id = $1', [id])
        reads.push({ id, version: r.rows[0].version, startedAt, status: r.status })
      } else if (way < 0.5) {
        const r = await s.cache.get(Versioned, id)
        reads.push({ id, version: r.value.version, startedAt, status: r.status })
      } else {
        const url = `/${way < 0.75 ? 'object' : 'query'}/${id}`
        const r = await (apps.get(s) as FastifyInstance).inject({ url })
        const status = String(r.headers['x-cache'])
        reads.push({ id, version: (r.json() as { version: number }).version, startedAt, status })
      }
    }
  }
  // Eight readers over a few rows on three servers: flights for one key inside a process, fill locks across.
  await Promise.all([writer(), writer(), ...Array.from({ length: 8 }, reader)])
  let violations = 0
  for (const r of reads) {
    let newest = 0
    for (const w of writes)
      if (w.id === r.id && w.ackedAt < r.startedAt && w.version > newest) newest = w.version
    if (r.version < newest) violations++
  }
  for (const app of apps.values()) await app.close()
  const count = (s: string) => reads.filter((r) => r.status === s).length
  return { violations, writes: writes.length, reads: reads.length, hits: count('HIT'), misses: count('MISS') }
}

describe('history checker', () => {
  it('no read that began after a write was acknowledged returns an older version (violations: 0)', async () => {
    const { products } = await seed(f.admin, 3)
    const servers: Server[] = []
    for (let i = 0; i < 3; i++) servers.push(await f.server({ db: (pool) => new ChaosDatabase(pool) }))
    const result = await run(
      servers,
      servers.map((s) => s.db),
      products,
      3_000,
    )
    console.log(`cache history: ${JSON.stringify(result)}`)
    expect(result.reads).toBeGreaterThan(50)
    expect(result.writes).toBeGreaterThan(10)
    expect(result.hits).toBeGreaterThan(0)
    expect(result.misses).toBeGreaterThan(0)
    expect(result.violations).toBe(0)
  })

  it('control: the checker does find violations when writes skip the invalidation', async () => {
    const { products } = await seed(f.admin, 4)
    const servers: Server[] = []
    for (let i = 0; i < 3; i++) servers.push(await f.server({ listen: false }))
    // Writers outside Fleet's layer, and nobody listening: the cache never hears of these writes.
    const blind = new Database(f.admin)
    const result = await run(servers, [blind], products, 1_000)
    expect(result.violations).toBeGreaterThan(0)
  })
})
