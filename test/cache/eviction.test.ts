/**
 * A lost or evicted key (entry or token) is a miss, never a stale hit: first by deleting keys by hand, then
 * against a redis-server with a tiny maxmemory (allkeys-lru evicts entries and tokens alike) while writes go on.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from '../../src/stack/ports.js'
import { LocalRedis } from '../../src/stack/redis.js'
import { createFixture, type Fixture, seed } from './support.js'

let f: Fixture | undefined
let redis: LocalRedis | undefined
let dir: string | undefined
afterEach(async () => {
  try {
    await f?.cleanup()
  } finally {
    // The redis-server this test started is stopped even when the cleanup fails.
    await redis?.stop()
    if (dir) await fs.rm(dir, { recursive: true, force: true })
    f = undefined
    redis = undefined
    dir = undefined
  }
})

const BY_ID = 'SELECT id, version FROM products WHERE id = $1'

describe('eviction', () => {
  it('a missing token or entry is a miss', async () => {
    f = await createFixture()
    const { products } = await seed(f.admin, 1)
    const s = await f.server({ listen: false })
    await s.cache.query(BY_ID, [products[0]])
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('HIT')
    const base = `${f.config.redisPrefix}{cache}:`
    await s.redis.del(`${base}t:products`)
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('MISS')
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('HIT')
    await s.redis.del(`${base}t:*`) // the epoch token every entry depends on
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('MISS')
    const entries = await s.redis.keys(`${base}e:*`)
    expect(entries.length).toBeGreaterThan(0)
    await s.redis.del(...entries)
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('MISS')
  })

  it('under a tiny maxmemory with writes going on, every read returns the latest acknowledged version', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-cache-evict-'))
    redis = new LocalRedis({
      role: 'cache',
      dataDir: dir,
      port: await freePort(),
      maxMemory: 3 * 1024 * 1024,
    })
    await redis.start()
    f = await createFixture({ CACHE_REDIS_URL: redis.url })
    const { products } = await seed(f.admin, 8)
    const s = await f.server()
    const latest = new Map<number, number>(products.map((id) => [id, 1]))
    const sql = 'SELECT id, version, repeat(md5(id::text), $2) AS pad FROM products WHERE id = $1'
    let violations = 0
    let reads = 0
    const deadline = Date.now() + 8_000
    for (let i = 0; i < 400 && Date.now() < deadline; i++) {
      const id = products[i % products.length]
      if (i % 40 === 0) {
        const r = await s.db.query<{ version: number }>(
          'UPDATE products SET version = version + 1 WHERE id = $1 RETURNING version',
          [id],
        )
        latest.set(id, r.rows[0].version)
      }
      // ~100 KB per entry: the 40 reads between two writes (which invalidate the table) exceed 3 MB.
      const r = await s.cache.query<{ version: number }>(sql, [id, 3_000 + (i % 97)])
      reads++
      if (r.rows[0].version < (latest.get(id) ?? 0)) violations++
    }
    const info = await s.redis.info('stats')
    const evicted = Number(/evicted_keys:(\d+)/.exec(info)?.[1] ?? 0)
    console.log(`cache eviction: ${JSON.stringify({ reads, evicted, violations })}`)
    expect(evicted).toBeGreaterThan(0)
    expect(violations).toBe(0)
  })
})
