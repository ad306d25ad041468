/**
 * The cache stays correct across a failover of the cache Redis (issue 20, item 3): a replica that missed the
 * last token bumps is promoted and the cache's address moves to it, and entries built under the old tokens,
 * which would validate there, are never served. Real redis-server processes on loopback ports (replication.ts),
 * real PostgreSQL; a stale read is a read that began after a write was acknowledged and returned what the write
 * replaced.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createCache } from '../../src/cache/cache.js'
import { Database } from '../../src/db/database.js'
import { createPool } from '../../src/db/pool.js'
import { connectRedis } from '../../src/redis/connect.js'
import { waitFor } from '../support/wait.js'
import {
  BY_ID,
  type MovingAddress,
  movingAddress,
  type RedisProcess,
  readAll,
  replicationField,
  snapshot,
  startRedis,
  validEntries,
  waitInSync,
} from './replication.js'
import { createFixture, type Fixture, seed } from './support.js'

const stops: (() => Promise<void>)[] = []
/** Read loops still running: stopped first, also when a step failed, so that none runs into the cleanup. */
const loads: ReturnType<typeof readAll>[] = []
let f: Fixture | undefined
afterEach(async () => {
  for (const l of loads.splice(0)) await l.stop().catch(() => {})
  try {
    await f?.cleanup()
  } finally {
    f = undefined
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {})
  }
})

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-cache-failover-'))
  stops.push(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

async function redis(dir: string, name: string, options: { port?: number; replicaOf?: number } = {}) {
  const r = await startRedis(dir, name, options)
  stops.push(() => r.kill())
  return r
}

async function address(target: number): Promise<MovingAddress> {
  const a = await movingAddress(target)
  stops.push(() => a.close())
  return a
}

/** The identity a history check finds on `redis` now (`<run_id>/<master_replid>`, as scripts.ts reads it). */
async function identityOf(redis: RedisProcess['admin']): Promise<string> {
  const run = /run_id:(\w+)/.exec(await redis.info('server'))?.[1]
  return `${run}/${await replicationField(redis, 'master_replid')}`
}

function reading(load: ReturnType<typeof readAll>): ReturnType<typeof readAll> {
  loads.push(load)
  return load
}

/**
 * A primary and a replica, the cache's address on the primary, and every product cached there and on the
 * replica. Then the replica leaves the primary's history (promoted: REPLICAOF NO ONE), and a write is
 * acknowledged on the primary alone: the replica keeps entries and tokens that validate but are stale.
 */
async function replicaMissesABump(products = 20) {
  const dir = await tempDir()
  const primary = await redis(dir, 'primary')
  const replica = await redis(dir, 'replica', { replicaOf: primary.port })
  await waitInSync(primary.admin, replica.admin)
  const vip = await address(primary.port)
  f = await createFixture({ CACHE_REDIS_URL: vip.url })
  const seeded = await seed(f.admin, products)
  const writer = await f.server()
  // Hears of no write (no LISTEN): only the cache's own checks can tell it of a new history.
  const reader = await f.server({ listen: false })
  for (const id of seeded.products) {
    expect((await reader.cache.query(BY_ID, [id])).status).toBe('MISS')
    expect((await reader.cache.query(BY_ID, [id])).status).toBe('HIT')
  }
  await waitInSync(primary.admin, replica.admin)
  const prefix = f.config.redisPrefix
  expect((await validEntries(replica.admin, prefix)).length).toBe(products)

  await replica.admin.call('REPLICAOF', 'NO', 'ONE')
  expect(await replicationField(replica.admin, 'role')).toBe('master')
  await writer.db.query(`UPDATE products SET name = 'renamed ' || id WHERE category_id = $1`, [
    seeded.category,
  ])
  // The write's bump reached the primary only: on the replica every entry still validates, with the old name.
  const left = await validEntries(replica.admin, prefix)
  expect(left.length).toBe(products)
  expect(left.every((p) => p.includes(Buffer.from('product ')))).toBe(true)
  expect((await writer.cache.query<{ name: string }>(BY_ID, [seeded.products[0]])).rows[0]?.name).toMatch(
    /^renamed /,
  )
  return { dir, primary, replica, vip, writer, reader, products: seeded.products }
}

describe('cache Redis failover', { timeout: 90_000 }, () => {
  it('the primary dies and the address moves to a promoted replica that missed a bump: 0 stale reads, reads in flight included', async () => {
    const { primary, replica, vip, writer, reader, products } = await replicaMissesABump()
    const load = reading(readAll([reader, writer], products))
    await load.more(100, 'HIT') // reads on the old primary (refilled after the write: HIT)
    const before = snapshot(load.reads)
    vip.moveTo(replica.port)
    await primary.kill() // reads in flight on its connections fail; the connections reconnect to the replica
    await load.more(500, 'HIT') // from the replica (the primary is gone): caching resumed there
    const reads = await load.stop()
    // A process that starts after the failover reads the promoted replica first hand.
    const late = await f!.server({ listen: false })
    for (const id of products)
      expect((await late.cache.query<{ name: string }>(BY_ID, [id])).rows[0]?.name).toBe(`renamed ${id}`)

    console.log('cache failover (primary killed):', JSON.stringify({ before, after: reads }))
    expect(reads.stale).toBe(0)
    expect(before.byStatus.HIT).toBeGreaterThan(0)
    expect(reads.byStatus.HIT - before.byStatus.HIT).toBeGreaterThan(100) // caching resumed on the replica
    expect((await reader.cache.stats()).history).toMatch(/^\w+\/\w+$/)
    // One epoch for the new history, made by whichever process came first (the others found it done).
    expect(await replica.admin.get(`${f!.config.redisPrefix}{cache}:h`)).toBe(
      (await reader.cache.stats()).history,
    )
  })

  it('a connection that queues and re-sends unanswered commands: its replies from the new primary before the check are dropped', async () => {
    const { primary, replica, vip, products } = await replicaMissesABump()
    // Not the cache's fail-fast connection: an offline queue, and what was unanswered at a close is sent again
    // on the new socket (ioredis's defaults), ahead of the history check.
    const config = f!.config
    const redis = connectRedis(vip.url)
    const pool = createPool(config)
    const cache = await createCache({ redis, db: new Database(pool), config, listen: false })
    stops.push(async () => {
      await cache.close()
      await pool.end()
      redis.disconnect()
    })
    const s = { cache, db: new Database(pool), redis, pool }
    const load = reading(readAll([s], products, 16, 0)) // no pause: reads in flight whenever the primary dies
    await load.more(100, 'HIT')
    vip.moveTo(replica.port)
    await primary.kill()
    await load.more(200, 'HIT') // from the replica
    const reads = await load.stop()
    console.log('cache failover (re-sending connection):', JSON.stringify(reads))
    expect(reads.stale).toBe(0)
    expect(reads.byStatus.HIT).toBeGreaterThan(100)
  })

  it('a process whose first contact is the promoted replica does not take its stale entries', async () => {
    const { primary, replica, vip, products } = await replicaMissesABump()
    vip.moveTo(replica.port)
    await primary.kill()
    const late = await f!.server({ listen: false })
    for (const id of products) {
      const r = await late.cache.query<{ name: string }>(BY_ID, [id])
      expect(r.rows[0]?.name).toBe(`renamed ${id}`)
      expect(r.status).toBe('MISS')
    }
  })

  it('the old primary demoted under open connections, resynchronized from the replica, then promoted again: 0 stale reads', async () => {
    const { primary, replica, writer, reader, products } = await replicaMissesABump()
    const load = reading(readAll([reader, writer], products))
    await load.more(100, 'HIT')
    // No address moves and no process is told: the server under the connections becomes a replica of the
    // promoted one and loads its data (entries that validate, with the old names).
    await primary.admin.call('REPLICAOF', '127.0.0.1', String(replica.port))
    await waitInSync(replica.admin, primary.admin)
    const demoted = snapshot(load.reads)
    await load.more(200, 'BYPASS') // every cache script is refused by a replica: reads bypass to PostgreSQL
    const asReplica = snapshot(load.reads)
    await primary.admin.call('REPLICAOF', 'NO', 'ONE')
    await load.more(200, 'HIT') // promoted again: caching resumed
    const reads = await load.stop()
    console.log(
      'cache failover (demoted, promoted again):',
      JSON.stringify({ demoted, asReplica, after: reads }),
    )
    expect(reads.stale).toBe(0)
    expect(asReplica.byStatus.HIT - demoted.byStatus.HIT).toBe(0)
    expect(reads.byStatus.HIT - asReplica.byStatus.HIT).toBeGreaterThan(100)
  })

  it('a quiet process finds the history changed under its open connection (the background check)', async () => {
    const { primary, replica, reader, products } = await replicaMissesABump()
    await primary.admin.call('REPLICAOF', '127.0.0.1', String(replica.port))
    await waitInSync(replica.admin, primary.admin)
    await primary.admin.call('REPLICAOF', 'NO', 'ONE')
    // The reader sends nothing meanwhile (stats() reads its last check, and sends no cache command): only its
    // background check, on an idle tick, can find the new history.
    const promoted = await identityOf(primary.admin)
    await waitFor('the background check to find the new history', async () =>
      (await reader.cache.stats()).history === promoted ? true : undefined,
    )
    for (const id of products) {
      const r = await reader.cache.query<{ name: string }>(BY_ID, [id])
      expect(r.rows[0]?.name).toBe(`renamed ${id}`)
    }
  })
})

describe('cache Redis restarted without persistence', { timeout: 90_000 }, () => {
  it('comes back empty on a new history: 0 stale reads across the restart, and caching resumes', async () => {
    const dir = await tempDir()
    let server: RedisProcess = await redis(dir, 'cache')
    const port = server.port
    f = await createFixture({ CACHE_REDIS_URL: server.url })
    const seeded = await seed(f.admin, 20)
    const writer = await f.server()
    const reader = await f.server({ listen: false })
    await writer.db.query(`UPDATE products SET name = 'renamed ' || id WHERE category_id = $1`, [
      seeded.category,
    ])
    const load = reading(readAll([reader, writer], seeded.products))
    await load.more(100, 'HIT')
    const history = (await reader.cache.stats()).history
    await server.kill()
    await load.more(100, 'BYPASS') // reads bypass to PostgreSQL
    server = await redis(dir, 'cache', { port })
    await waitFor('the caches to be back', async () => {
      const s = await reader.cache.stats()
      return s.history !== undefined && s.history !== history ? true : undefined
    })
    const restarted = snapshot(load.reads)
    await load.more(200, 'HIT')
    const reads = await load.stop()
    console.log('cache Redis restarted:', JSON.stringify({ restarted, after: reads }))
    expect(reads.stale).toBe(0)
    expect(reads.byStatus.HIT - restarted.byStatus.HIT).toBeGreaterThan(100)
    expect(await server.admin.get(`${f.config.redisPrefix}{cache}:h`)).toBe(
      (await reader.cache.stats()).history,
    )
  })
})
