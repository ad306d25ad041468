/**
 * The cache across a Sentinel failover of the cache Redis (CACHE_REDIS_URL=redis+sentinel://...), on a real
 * deployment of the test's own (test/redis/sentinel-bed.ts: a primary, one replica, three Sentinels, quorum 2,
 * down-after 1 s). The replica's link to the primary is cut (it can no longer authenticate to resync), a write
 * is acknowledged on the primary alone, the primary is SIGKILLed and the Sentinels promote the replica that
 * missed the bump: no read that began after the write returns what it replaced, also reads in flight when
 * the primary died, and the cache serves hits again from the new primary.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { ask, SentinelBed } from '../redis/sentinel-bed.js'
import { waitFor } from '../support/wait.js'
import {
  BY_ID,
  plainConnection,
  readAll,
  replicationField,
  snapshot,
  validEntries,
  waitInSync,
} from './replication.js'
import { createFixture, type Fixture, seed } from './support.js'

let bed: SentinelBed | undefined
let f: Fixture | undefined
afterEach(async () => {
  try {
    await f?.cleanup()
  } finally {
    f = undefined
    await bed?.stop()
    bed = undefined
  }
})

describe('cache Redis under Sentinel', () => {
  it('the primary dies, the Sentinels promote a replica that missed a bump: 0 stale reads, and hits again', async () => {
    bed = await SentinelBed.start({
      masterName: 'fleetcache',
      replicas: 1,
      serverArgs: ['--maxmemory', String(64 * 1024 * 1024), '--maxmemory-policy', 'allkeys-lru'],
    })
    const primaryPort = await bed.primaryPort()
    const [replicaPort] = await bed.replicaPorts()
    f = await createFixture({ CACHE_REDIS_URL: bed.url() })
    const { category, products } = await seed(f.admin, 20)
    const writer = await f.server()
    const reader = await f.server({ listen: false })
    for (const id of products) {
      await reader.cache.query(BY_ID, [id])
      expect((await reader.cache.query(BY_ID, [id])).status).toBe('HIT')
    }
    let load: ReturnType<typeof readAll> | undefined
    const replica = plainConnection(replicaPort as number)
    const primary = plainConnection(primaryPort)
    try {
      await waitInSync(primary, replica)
      // A cut link: the replica drops its connection to the primary and cannot authenticate to make another.
      await ask(replicaPort as number, 'CONFIG', 'SET', 'masteruser', 'nobody')
      await ask(replicaPort as number, 'CONFIG', 'SET', 'masterauth', 'wrong')
      await ask(replicaPort as number, 'CLIENT', 'KILL', 'TYPE', 'master')
      await waitFor('the replica link to be down', async () =>
        (await replicationField(replica, 'master_link_status')) === 'down' ? true : undefined,
      )
      await writer.db.query(`UPDATE products SET name = 'renamed ' || id WHERE category_id = $1`, [category])
      const left = await validEntries(replica, f.config.redisPrefix)
      expect(left.length).toBe(20) // would validate there, with the old names

      const running = readAll([reader, writer], products)
      load = running
      await running.more(100, 'HIT') // reads on the old primary, in flight when it dies
      const before = snapshot(running.reads)
      const killedAt = performance.now()
      bed.signal(primaryPort, 'SIGKILL')
      const promoted = await bed.failedOver(primaryPort)
      const promotedMs = Math.round(performance.now() - killedAt)
      expect(promoted).toBe(replicaPort)
      await waitFor('hits from the new primary', async () =>
        running.reads.byStatus.HIT > before.byStatus.HIT + 1_000 ? true : undefined,
      )
      const hitsMs = Math.round(performance.now() - killedAt)
      load = undefined
      const reads = await running.stop()
      console.log('cache failover (Sentinel):', JSON.stringify({ promotedMs, hitsMs, before, after: reads }))
      expect(reads.stale).toBe(0)
      expect(await replica.get(`${f.config.redisPrefix}{cache}:h`)).toBe((await reader.cache.stats()).history)
    } finally {
      await load?.stop() // a failed step leaves no read running into the cleanup
      replica.disconnect()
      primary.disconnect()
    }
  }, 120_000)
})
