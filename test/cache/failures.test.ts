/**
 * The cache Redis killed and restarted (from its AOF, with entries written before the kill), and PostgreSQL
 * stopped and started: each on servers this test starts itself.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from '../../src/stack/ports.js'
import { EmbeddedPostgres } from '../../src/stack/postgres.js'
import { LocalRedis } from '../../src/stack/redis.js'
import { hooks, TestPage } from './objects.js'
import { createFixture, eventually, type Fixture, seed } from './support.js'

const stops: (() => Promise<void>)[] = []
let f: Fixture | undefined
afterEach(async () => {
  try {
    await f?.cleanup()
  } finally {
    f = undefined // the servers this test started are stopped even when the cleanup fails
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {})
  }
})

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-cache-'))
  await fs.chmod(dir, 0o755)
  stops.push(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

const BY_ID = 'SELECT id, name FROM products WHERE id = $1'

describe('cache Redis killed and restarted', () => {
  it('reads go to PostgreSQL behind the breaker, and caching resumes without serving what changed meanwhile', async () => {
    const dir = await tempDir()
    const port = await freePort()
    let redis = new LocalRedis({ role: 'cache', dataDir: dir, port })
    await redis.start()
    stops.push(() => redis.stop())
    f = await createFixture({ CACHE_REDIS_URL: redis.url })
    const { products } = await seed(f.admin, 1)
    const id = products[0]
    const writer = await f.server()
    const reader = await f.server({ listen: false }) // hears of no write: only the restart itself can warn it
    await reader.cache.query(BY_ID, [id])
    expect((await reader.cache.query(BY_ID, [id])).status).toBe('HIT')

    redis.kill()
    const during: string[] = []
    for (let i = 0; i < 10; i++) {
      const r = await reader.cache.query<{ name: string }>(BY_ID, [id])
      expect(r.rows[0].name).toBe('product 0')
      during.push(r.status)
    }
    expect(new Set(during)).toEqual(new Set(['BYPASS']))
    expect((await reader.cache.stats()).breaker).not.toBe('closed')
    // A write while the cache is down: committed, acknowledged, its invalidation lost.
    await writer.db.query(`UPDATE products SET name = 'during outage' WHERE id = $1`, [id])

    redis = new LocalRedis({ role: 'cache', dataDir: dir, port }) // same AOF: the old entry comes back
    await redis.start()
    const resumed = await eventually(async () => {
      const r = await reader.cache.query<{ name: string }>(BY_ID, [id])
      expect(r.rows[0].name).toBe('during outage') // never the entry from before the outage
      return r.status === 'HIT'
    }, 10_000)
    expect(resumed).toBe(true)
    const w = await writer.cache.query<{ name: string }>(BY_ID, [id])
    expect(w.rows[0].name).toBe('during outage')
  })
})

describe('PostgreSQL stopped and started', () => {
  it('serves stale inside the grace period, fails writes fast with 503, and recovers', async () => {
    const dir = await tempDir()
    const pg = new EmbeddedPostgres({
      dataDir: path.join(dir, 'pg'),
      port: await freePort(),
      database: 'cache_test',
    })
    await pg.start()
    stops.push(() => pg.stop())
    f = await createFixture({ DATABASE_URL: pg.url, FLEET_CACHE_TTL: '10s', FLEET_CACHE_GRACE: '10m' })
    const { products } = await seed(f.admin, 2)
    let clock = Date.now()
    const s = await f.server({ now: () => clock })
    hooks.afterProduct = async () => {}
    await s.cache.get(TestPage, products[0])
    await s.cache.query(BY_ID, [products[0]])

    await pg.stop()
    clock += 60_000 // both entries expired, well inside the grace period
    const page = await s.cache.get(TestPage, products[0])
    expect(page.status).toBe('STALE')
    expect(page.value.title()).toBe('product 0 (Cat)')
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('STALE')
    await expect(s.cache.get(TestPage, products[1])).rejects.toMatchObject({
      code: 'FLEET_E_DB_UNAVAILABLE',
      statusCode: 503,
    })
    await expect(
      s.db.query(`UPDATE products SET name = 'x' WHERE id = $1`, [products[0]]),
    ).rejects.toMatchObject({
      code: 'FLEET_E_DB_UNAVAILABLE',
    })

    await pg.start()
    const recovered = await eventually(async () => {
      try {
        return (await s.cache.get(TestPage, products[1])).status !== 'STALE'
      } catch {
        return false
      }
    }, 15_000)
    expect(recovered).toBe(true)
    await s.db.query(`UPDATE products SET name = 'after' WHERE id = $1`, [products[0]])
    const after = await s.cache.get(TestPage, products[0])
    expect(after.value.name).toBe('after')
  })
})
