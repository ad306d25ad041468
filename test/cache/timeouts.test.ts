import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { hooks, TestPage } from './objects.js'
import { createFixture, eventually, type Fixture, gate, seed } from './support.js'

let f: Fixture
let clock = Date.now()
const now = () => clock
const SEC = 1_000

beforeEach(async () => {
  f = await createFixture({
    FLEET_CACHE_TTL: '10s',
    FLEET_CACHE_GRACE: '10m',
    FLEET_CACHE_SOFT_TIMEOUT: '300ms',
    FLEET_CACHE_HARD_TIMEOUT: '1500ms',
    // These tests time the loader, not Redis: a Redis command slowed past the fixture's 500 ms by a busy
    // CI machine failed a fill once and made one more load (3 assemblies where 2 are right).
    FLEET_CACHE_REDIS_TIMEOUT: '5s',
  })
  clock = Date.now()
  hooks.assembled = 0
})
afterEach(async () => {
  hooks.afterProduct = async () => {}
  await f.cleanup()
})

describe('grace, soft and hard timeouts', () => {
  it('an expired entry is refreshed by a fast loader (MISS), and served while fresh (HIT)', async () => {
    const { products } = await seed(f.admin, 1)
    const s = await f.server({ now })
    expect((await s.cache.get(TestPage, products[0])).status).toBe('MISS')
    clock += 5 * SEC
    expect((await s.cache.get(TestPage, products[0])).status).toBe('HIT')
    clock += 6 * SEC // past the TTL, inside the grace period
    expect((await s.cache.get(TestPage, products[0])).status).toBe('MISS')
  })

  it('past the soft timeout the stale entry is served, and the load finishes in the background', async () => {
    const { products } = await seed(f.admin, 1)
    const s = await f.server({ now })
    await s.cache.get(TestPage, products[0])
    clock += 11 * SEC
    const slow = gate() // the load is held past the soft timeout until the test opens the gate
    hooks.afterProduct = slow.wait
    try {
      const r = await s.cache.get(TestPage, products[0])
      expect(r.status).toBe('STALE')
      expect(r.value.title()).toBe('product 0 (Cat)')
      hooks.afterProduct = async () => {}
      // Meanwhile the lock is held: reads get the stale entry without loading again; then the background
      // load stores its result and reads hit.
      expect((await s.cache.get(TestPage, products[0])).status).toBe('STALE')
    } finally {
      slow.open()
    }
    const hit = await eventually(
      async () => (await s.cache.get(TestPage, products[0])).status === 'HIT',
      5_000,
    )
    expect(hit).toBe(true)
    expect(hooks.assembled).toBe(2)
  })

  it('a failing loader serves the stale entry; without one, its error reaches the caller', async () => {
    const { products } = await seed(f.admin, 2)
    const s = await f.server({ now })
    await s.cache.get(TestPage, products[0])
    clock += 11 * SEC
    hooks.afterProduct = async () => {
      throw new Error('database on fire')
    }
    expect((await s.cache.get(TestPage, products[0])).status).toBe('STALE')
    await expect(s.cache.get(TestPage, products[1])).rejects.toThrow('database on fire')
  })

  it('past the hard timeout, a read with nothing to serve fails with FLEET_E_CACHE_LOADER_TIMEOUT', async () => {
    const { products } = await seed(f.admin, 1)
    const s = await f.server({ now })
    const slow = gate() // the load never ends before the hard timeout: the gate opens after it
    hooks.afterProduct = slow.wait
    try {
      await expect(s.cache.get(TestPage, products[0])).rejects.toMatchObject({
        code: 'FLEET_E_CACHE_LOADER_TIMEOUT',
        statusCode: 504,
      })
    } finally {
      slow.open()
    }
  })

  it('past the grace period the entry is gone: a miss', async () => {
    const { products } = await seed(f.admin, 1)
    const s = await f.server({ now })
    await s.cache.get(TestPage, products[0])
    const entry = `${f.config.redisPrefix}{cache}:e:o:TestPage:${products[0]}`
    await s.redis.pexpire(entry, 1)
    expect(await eventually(async () => (await s.redis.exists(entry)) === 0)).toBe(true)
    expect((await s.cache.get(TestPage, products[0])).status).toBe('MISS')
  })
})
