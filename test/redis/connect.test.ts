/**
 * connectRedis without a Sentinel deployment: a one-shot connection (a CLI's: no retries) through Sentinels
 * that are all down fails at once instead of asking them again forever, and a plain URL is read by ioredis
 * as before (the database from its path). A TLS connection whose CA file cannot be used is not opened.
 * (TLS connections themselves: test/redis/sentinel-tls.test.ts.)
 */
import { describe, expect, inject, it } from 'vitest'
import { connectRedis } from '../../src/redis/connect.js'
import { freePort } from '../../src/stack/ports.js'

describe('connectRedis', () => {
  it('gives up a one-shot connection when no Sentinel answers', async () => {
    const [a, b] = [await freePort(), await freePort()]
    const redis = connectRedis(`redis+sentinel://127.0.0.1:${a},127.0.0.1:${b}/fleetstore`, {
      extra: { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 },
    })
    const t0 = performance.now()
    await expect(redis.connect()).rejects.toThrow(/All sentinels are unreachable/)
    expect(performance.now() - t0).toBeLessThan(3_000)
    redis.disconnect()
  })

  it('reads a plain URL as ioredis does', async () => {
    const url = new URL(inject('redisUrl'))
    url.pathname = '/3'
    const redis = connectRedis(url.href)
    try {
      expect(await redis.client('INFO')).toMatch(/ db=3 /)
      expect(redis.options.sentinels).toBeFalsy()
    } finally {
      redis.disconnect()
    }
  })

  it('refuses a TLS URL whose CA file cannot be used (FLEET_E_CONFIG_INVALID); a plain URL does not read it', () => {
    const missing = '/nonexistent/fleet-ca.pem'
    for (const url of ['rediss://127.0.0.1:1', 'rediss+sentinel://127.0.0.1:1/m'])
      expect(() => connectRedis(url, { tlsCaFile: missing })).toThrow(
        expect.objectContaining({ code: 'FLEET_E_CONFIG_INVALID', setting: 'FLEET_REDIS_TLS_CA' }),
      )
    const plain = connectRedis('redis://127.0.0.1:1', {
      tlsCaFile: missing,
      extra: { lazyConnect: true, retryStrategy: () => null },
    })
    plain.disconnect()
  })
})
