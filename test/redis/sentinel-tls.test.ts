/**
 * TLS to a Sentinel deployment (REDIS_URL=rediss+sentinel://...), on a deployment of the test's own that speaks
 * TLS only (test/redis/sentinel-bed.ts with `tls`: a primary, a replica and three Sentinels, `port 0`, with a
 * certificate for 127.0.0.1 signed by a throwaway CA, test/support/certs.ts):
 * - a connection reads and writes on the primary over TLS, its failover detector's Sentinel connections are
 *   TLS too, and its duplicates connect the same way (a BullMQ worker, which duplicates it, runs a job);
 * - after the primary is SIGKILLed a write works again, on the promoted replica;
 * - the CA comes from FLEET_REDIS_TLS_CA when the caller names none; `rediss://` to one server takes it too;
 * - without the CA (the system's only), or with another CA, the connection is refused: an error, no hang.
 */
import { TLSSocket } from 'node:tls'
import { Queue, Worker } from 'bullmq'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectRedis, type Redis, type RedisConnectOptions } from '../../src/redis/connect.js'
import { makeTestCa, type TestCa } from '../support/certs.js'
import { waitFor } from '../support/wait.js'
import { SentinelBed } from './sentinel-bed.js'

/** The TLS port of the server a connection talks to, as that server reports it (its TCP port is 0). */
async function serverPort(redis: Redis): Promise<number> {
  return Number(((await redis.config('GET', 'tls-port')) as string[])[1])
}

interface Internals {
  stream?: unknown
  connector?: { failoverDetector?: { sentinels?: { client?: Redis }[] } | null }
}

/** The failover detector's Sentinel connections of `redis` (ioredis internals, as src/redis/connect.ts reads them). */
const detectorClients = (redis: Redis) =>
  ((redis as unknown as Internals).connector?.failoverDetector?.sentinels ?? []).flatMap((s) =>
    s.client ? [s.client] : [],
  )
const overTls = (redis: Redis) => (redis as unknown as Internals).stream instanceof TLSSocket

describe('Sentinel over TLS (rediss+sentinel://)', () => {
  let ca: TestCa | undefined
  let otherCa: TestCa | undefined
  let bed: SentinelBed | undefined
  const opened: Redis[] = []
  const connect = (url: string, options: RedisConnectOptions = {}) => {
    const r = connectRedis(url, { extra: { commandTimeout: 2_000 }, ...options })
    opened.push(r)
    return r
  }
  /** A connection that trusts the test's CA, as FLEET_REDIS_TLS_CA would have it. */
  const trusted = (name: string, options: RedisConnectOptions = {}) =>
    connect(bed!.url(), { name, tlsCaFile: ca!.caFile, ...options })

  beforeAll(async () => {
    ca = makeTestCa('fleet-sentinel-tls-')
    const cert = ca.issue('redis')
    bed = await SentinelBed.start({ replicas: 1, tls: { ...cert, caFile: ca.caFile } })
  }, 60_000)

  afterAll(async () => {
    for (const r of opened) r.disconnect()
    await bed?.stop()
    ca?.cleanup()
    otherCa?.cleanup()
  })

  it('reads and writes on the primary over TLS; the failover detector and duplicates use TLS too', async () => {
    const redis = trusted('tls-primary')
    expect(await redis.set('tls:k', 'v')).toBe('OK')
    expect(await redis.get('tls:k')).toBe('v')
    expect(await serverPort(redis)).toBe(await bed!.primaryPort())
    expect(overTls(redis)).toBe(true)
    // The detector subscribes to +switch-master on every Sentinel, over TLS (the Sentinels have no plain port).
    const clients = await waitFor(
      'the failover detector to be subscribed on the three Sentinels',
      async () => {
        const c = detectorClients(redis)
        return c.length === 3 && c.every((x) => x.status === 'ready') ? c : undefined
      },
    )
    expect(clients.every(overTls)).toBe(true)
    const copy = redis.duplicate()
    opened.push(copy)
    expect(await copy.get('tls:k')).toBe('v')
    expect(overTls(copy)).toBe(true)
  })

  it('runs a BullMQ job over its connection and the blocking one it duplicates', async () => {
    const redis = trusted('tls-bullmq', { extra: { maxRetriesPerRequest: null } })
    const prefix = 'tls:{jobs}'
    const queue = new Queue('tls.probe', { connection: redis, prefix })
    let worker: Worker | undefined
    try {
      const done = new Promise<unknown>((resolve, reject) => {
        worker = new Worker('tls.probe', async (job) => `ran ${job.data.n}`, { connection: redis, prefix })
        worker.on('completed', (_job, result) => resolve(result))
        worker.on('failed', (_job, err) => reject(err))
      })
      await queue.add('tls.probe', { n: 1 })
      expect(await done).toBe('ran 1')
    } finally {
      await worker?.close()
      await queue.close()
    }
  })

  it('writes again on the promoted replica after the primary is SIGKILLed', async () => {
    const redis = trusted('tls-failover')
    const old = await bed!.primaryPort()
    expect(await serverPort(redis)).toBe(old)
    const t0 = performance.now()
    bed!.signal(old, 'SIGKILL')
    const promoted = await bed!.failedOver(old, 20_000)
    const promotedMs = Math.round(performance.now() - t0)
    await waitFor(
      'a write to work again',
      async () => ((await redis.set('tls:failover', 'after')) === 'OK' ? true : undefined),
      15_000,
      20,
    )
    const writeMs = Math.round(performance.now() - t0)
    expect(await serverPort(redis)).toBe(promoted)
    expect(overTls(redis)).toBe(true)
    console.log(`TLS, killed primary: promoted after ${promotedMs} ms, first write after ${writeMs} ms`)
    expect(writeMs - promotedMs).toBeLessThan(2_500)
  }, 40_000)

  it('takes the CA from FLEET_REDIS_TLS_CA, for rediss+sentinel:// and rediss:// alike', async () => {
    const before = process.env.FLEET_REDIS_TLS_CA
    process.env.FLEET_REDIS_TLS_CA = ca!.caFile
    try {
      const viaSentinel = connect(bed!.url(), { name: 'tls-env' })
      expect(await viaSentinel.ping()).toBe('PONG')
      const port = await bed!.primaryPort()
      // One server, no Sentinel; an upper-case scheme is TLS too (ioredis alone reads only `rediss://` so).
      for (const scheme of ['rediss', 'REDISS']) {
        const direct = connect(`${scheme}://127.0.0.1:${port}`, { name: `tls-direct-${scheme}` })
        expect(await direct.ping()).toBe('PONG')
        expect(overTls(direct)).toBe(true)
      }
    } finally {
      if (before === undefined) delete process.env.FLEET_REDIS_TLS_CA
      else process.env.FLEET_REDIS_TLS_CA = before
    }
  })

  it('is refused without the CA, or with another CA: the connection errors and a command fails, no hang', async () => {
    otherCa = makeTestCa('fleet-sentinel-tls-other-')
    const port = await bed!.primaryPort()
    const cases: [string, string, string | null][] = [
      ['system CAs, through the Sentinels', bed!.url(), null],
      ['another CA, through the Sentinels', bed!.url(), otherCa.caFile],
      ['system CAs, to one server', `rediss://127.0.0.1:${port}`, null],
    ]
    for (const [what, url, tlsCaFile] of cases) {
      const errors: Error[] = []
      const t0 = performance.now()
      const redis = connect(url, { tlsCaFile, failFast: true, onError: (err) => errors.push(err) })
      const err = await waitFor(
        `a certificate error (${what})`,
        async () => errors.find((e) => /certificate/i.test(e.message)),
        5_000,
        20,
      )
      await expect(redis.ping()).rejects.toThrow()
      const ms = Math.round(performance.now() - t0)
      console.log(`${what}: refused after ${ms} ms: ${err.message}`)
      expect(ms).toBeLessThan(5_000)
      redis.disconnect()
    }
  })
})
