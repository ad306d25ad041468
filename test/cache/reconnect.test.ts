/**
 * A dropped connection to a cache Redis that stayed up keeps the cache (its replication history, run_id and
 * master_replid, is the same); a write whose invalidation could not reach Redis meanwhile still replaces the
 * epoch. (A restarted Redis, a new run_id, is in failures.test.ts; failovers in failover.test.ts.)
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { connectRedis, type Redis } from '../../src/redis/connect.js'
import { createFixture, eventually, type Fixture, seed } from './support.js'

let f: Fixture
let admin: Redis
beforeEach(async () => {
  f = await createFixture()
  admin = connectRedis(f.config.cacheRedisUrl!)
})
afterEach(async () => {
  admin.disconnect()
  await f.cleanup()
})

const BY_ID = 'SELECT id, name FROM products WHERE id = $1'

/** Closes the cache's connection from the server side, and waits until the client is connected again. */
async function dropConnection(client: Redis): Promise<void> {
  const id = (await client.client('ID')) as number
  await admin.client('KILL', 'ID', String(id))
  const reconnected = async () =>
    client.status === 'ready' && ((await client.client('ID').catch(() => id)) as number) !== id
  expect(await eventually(reconnected, 5000)).toBe(true)
}

describe('cache Redis connection dropped, Redis still up', () => {
  it('keeps serving hits after the reconnect: the epoch is not replaced', async () => {
    const { products } = await seed(f.admin, 1)
    const s = await f.server({ listen: false })
    const epochKey = `${f.config.redisPrefix}{cache}:t:*`
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('MISS')
    expect((await s.cache.query(BY_ID, [products[0]])).status).toBe('HIT')
    const epoch = await admin.get(epochKey)
    await dropConnection(s.redis)
    // The breaker opened on the close: BYPASS until its cooldown (200 ms here), then HIT again.
    expect(
      await eventually(async () => (await s.cache.query(BY_ID, [products[0]])).status === 'HIT', 3000),
    ).toBe(true)
    expect(await admin.get(epochKey)).toBe(epoch)
  })

  it('replaces the epoch when an invalidation failed while the connection was down', async () => {
    const { products } = await seed(f.admin, 1)
    const s = await f.server({ listen: false })
    const epochKey = `${f.config.redisPrefix}{cache}:t:*`
    await s.cache.query(BY_ID, [products[0]])
    const epoch = await admin.get(epochKey)
    // Take the connection down for good, write (its bump fails), then let it reconnect.
    s.redis.disconnect(false)
    await s.db.query('UPDATE products SET name = $1 WHERE id = $2', ['renamed', products[0]])
    s.redis.connect().catch(() => {})
    expect(
      await eventually(async () => {
        const r = await s.cache.query<{ name: string }>(BY_ID, [products[0]])
        return r.status !== 'BYPASS' && r.rows[0].name === 'renamed'
      }, 3000),
    ).toBe(true)
    expect(await admin.get(epochKey)).not.toBe(epoch)
  })
})
