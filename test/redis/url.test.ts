/**
 * Redis URLs (src/redis/url.ts): the plain forms pass through as ioredis reads them; the Sentinel form
 * `redis+sentinel://[user:password@]h1:26379,h2:26379/<masterName>[?db=N&sentinelPassword=...]` (and
 * `rediss+sentinel://`, TLS) is read into Sentinels, a master name and credentials; anything else is refused
 * with FLEET_E_REDIS_URL_INVALID naming the part that is wrong (never repeating a password), and as a setting
 * with FLEET_E_CONFIG_INVALID. FLEET_REDIS_TLS_CA, the CA of TLS connections, is read and checked at start.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { parseRedisUrl, redactRedisUrl } from '../../src/redis/url.js'

describe('parseRedisUrl', () => {
  it('passes redis:// and rediss:// (TLS, any case) through unchanged', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6379')).toEqual({
      kind: 'server',
      url: 'redis://127.0.0.1:6379',
      tls: false,
    })
    expect(parseRedisUrl('rediss://u:p@cache.example:6380/2')).toEqual({
      kind: 'server',
      url: 'rediss://u:p@cache.example:6380/2',
      tls: true,
    })
    expect(parseRedisUrl('REDISS://h:1')).toMatchObject({ kind: 'server', tls: true })
  })

  it('reads the Sentinel form: Sentinels (26379 by default, IPv6 in brackets), master name, credentials, db', () => {
    expect(parseRedisUrl('redis+sentinel://10.0.0.1:26379,10.0.0.2,[::1]:26380/store')).toEqual({
      kind: 'sentinel',
      tls: false,
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      masterName: 'store',
      db: 0,
    })
    expect(
      parseRedisUrl(
        'redis+sentinel://fleet:p%40ss@s1.example:26379,s2.example:26379/my-master.1?db=3&sentinelPassword=s%26cret&sentinelUsername=watch',
      ),
    ).toEqual({
      kind: 'sentinel',
      tls: false,
      sentinels: [
        { host: 's1.example', port: 26379 },
        { host: 's2.example', port: 26379 },
      ],
      masterName: 'my-master.1',
      username: 'fleet',
      password: 'p@ss',
      db: 3,
      sentinelUsername: 'watch',
      sentinelPassword: 's&cret',
    })
    // A password alone (requirepass), as redis://:password@ writes it.
    expect(parseRedisUrl('redis+sentinel://:secret@h:1/m')).toMatchObject({ password: 'secret' })
    expect(parseRedisUrl('REDIS+SENTINEL://h:1/m')).toMatchObject({ kind: 'sentinel', masterName: 'm' })
  })

  it('reads rediss+sentinel:// as the Sentinel form with TLS (to the Sentinels and the servers)', () => {
    expect(
      parseRedisUrl(
        'rediss+sentinel://fleet:p%40ss@s1.example:26379,[::1]/store?db=2&sentinelUsername=watch&sentinelPassword=s',
      ),
    ).toEqual({
      kind: 'sentinel',
      tls: true,
      sentinels: [
        { host: 's1.example', port: 26379 },
        { host: '::1', port: 26379 },
      ],
      masterName: 'store',
      username: 'fleet',
      password: 'p@ss',
      db: 2,
      sentinelUsername: 'watch',
      sentinelPassword: 's',
    })
    expect(parseRedisUrl('REDISS+SENTINEL://h/m')).toMatchObject({
      kind: 'sentinel',
      tls: true,
      masterName: 'm',
    })
  })

  const bad: [string, RegExp][] = [
    ['http://127.0.0.1:6379', /expected redis:\/\/host:port, rediss/],
    ['127.0.0.1:6379', /expected redis:\/\//],
    ['redis://h:1:2', /expected redis:\/\/host:port/],
    ['redis+sentinel://h1:26379,h2:26379', /master name is missing/],
    ['redis+sentinel://h1:26379/', /master name is missing/],
    ['redis+sentinel:///mymaster', /no Sentinel is listed/],
    ['redis+sentinel://h1:26379,,h2/m', /Sentinel "" is not host:port/],
    ['redis+sentinel://h1:/m', /has an empty port/],
    ['redis+sentinel://h1:0/m', /outside 1-65535/],
    ['redis+sentinel://h1:70000/m', /outside 1-65535/],
    ['redis+sentinel://h1:26379x/m', /is not host:port/],
    ['redis+sentinel://h1,h1:26379/m', /listed twice/],
    ['redis+sentinel://h1/m/2', /give the database as \?db=N/],
    ['redis+sentinel://h1/m%20x', /master name "m x" may hold only/],
    ['redis+sentinel://h1/m?db=x', /db must be a database number/],
    ['redis+sentinel://h1/m?db=1&db=2', /given twice/],
    ['redis+sentinel://h1/m?password=x', /unknown parameter "password"/],
    ['redis+sentinel://h1/m#x', /fragment/],
    ['redis+sentinel://u:%zz@h1/m', /the password is not valid percent-encoding/],
    ['rediss+sentinel://h1:26379', /master name is missing/],
    ['rediss+sentinel:///m', /no Sentinel is listed/],
    ['rediss+sentinel://h1:0/m', /outside 1-65535/],
    ['rediss+sentinel://h1/m?tls=true', /unknown parameter "tls"/],
    ['rediss+sentinel://h1/m/0', /give the database as \?db=N/],
    ['redis+sentinels://h1/m', /expected redis:\/\/.*rediss\+sentinel:\/\//],
    ['rediss-sentinel://h1/m', /expected redis:\/\//],
    ['sentinel://h1/m', /expected redis:\/\//],
  ]
  it.each(bad)('refuses %s with FLEET_E_REDIS_URL_INVALID', (url, reason) => {
    let thrown: unknown
    try {
      parseRedisUrl(url)
    } catch (err) {
      thrown = err
    }
    expect(thrown).toMatchObject({ code: 'FLEET_E_REDIS_URL_INVALID', statusCode: 500 })
    expect((thrown as Error).message).toMatch(reason)
  })

  it('never repeats a password in its message', () => {
    const url = 'redis+sentinel://fleet:hunter2@h1/m?sentinelPassword=swordfish&db=x'
    expect(() => parseRedisUrl(url)).toThrow(/fleet:\*\*\*@h1\/m\?sentinelPassword=\*\*\*&db=x/)
    expect(() => parseRedisUrl(`rediss${url.slice(5)}`)).toThrow(
      /^rediss\+sentinel:\/\/fleet:\*\*\*@h1\/m\?sentinelPassword=\*\*\*&db=x /,
    )
    expect(redactRedisUrl('redis://:pw@h:1')).toBe('redis://:***@h:1')
  })
})

describe('REDIS_URL and CACHE_REDIS_URL settings', () => {
  it('take the Sentinel form', () => {
    const url = 'redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/store'
    const config = loadConfig({ env: { REDIS_URL: url, CACHE_REDIS_URL: `${url.slice(0, -5)}cache?db=1` } })
    expect(config.redisUrl).toBe(url)
    expect(config.cacheRedisUrl).toBe('redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/cache?db=1')
  })

  it('take the TLS Sentinel form', () => {
    const url = 'rediss+sentinel://127.0.0.1:26379,127.0.0.1:26380/store?db=1'
    const config = loadConfig({ env: { REDIS_URL: url, CACHE_REDIS_URL: url.replace('store', 'cache') } })
    expect(config.redisUrl).toBe(url)
    expect(config.cacheRedisUrl).toBe('rediss+sentinel://127.0.0.1:26379,127.0.0.1:26380/cache?db=1')
    expect(() => loadConfig({ env: { REDIS_URL: 'rediss+sentinel://h1' } })).toThrow(
      expect.objectContaining({ code: 'FLEET_E_CONFIG_INVALID', setting: 'REDIS_URL' }),
    )
  })

  it('refuse a malformed one with FLEET_E_CONFIG_INVALID naming the setting and what is wrong', () => {
    expect(() => loadConfig({ env: { REDIS_URL: 'redis+sentinel://h1:26379' } })).toThrow(
      expect.objectContaining({
        code: 'FLEET_E_CONFIG_INVALID',
        setting: 'REDIS_URL',
        message: expect.stringMatching(/master name is missing/),
        cause: expect.objectContaining({
          cause: expect.objectContaining({ code: 'FLEET_E_REDIS_URL_INVALID' }),
        }),
      }),
    )
    expect(() => loadConfig({ env: { CACHE_REDIS_URL: 'http://h:1' } })).toThrow(/CACHE_REDIS_URL/)
  })

  it('default to no replica wait (a single Redis), and read FLEET_STORE_WAIT_REPLICAS / _TIMEOUT', () => {
    const plain = loadConfig({ env: {} })
    expect(plain.storeWaitReplicas).toBe(0)
    expect(plain.storeWaitTimeout).toBe(500)
    const waited = loadConfig({ env: { FLEET_STORE_WAIT_REPLICAS: '1', FLEET_STORE_WAIT_TIMEOUT: '2s' } })
    expect(waited.storeWaitReplicas).toBe(1)
    expect(waited.storeWaitTimeout).toBe(2_000)
    expect(() => loadConfig({ env: { FLEET_STORE_WAIT_TIMEOUT: '0' } })).toThrow(/FLEET_STORE_WAIT_TIMEOUT/)
  })
})

describe('FLEET_REDIS_TLS_CA', () => {
  it('is unset by default (the system CAs), and takes a readable PEM file with a certificate', () => {
    expect(loadConfig({ env: {} }).redisTlsCa).toBeUndefined()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-redis-ca-'))
    try {
      const pem = path.join(dir, 'ca.pem')
      fs.writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
      expect(loadConfig({ env: { FLEET_REDIS_TLS_CA: pem } }).redisTlsCa).toBe(pem)
      // Anything else stops the start, naming the setting and why.
      const notPem = path.join(dir, 'key.txt')
      fs.writeFileSync(notPem, 'hello\n')
      const cases: [string, RegExp][] = [
        [path.join(dir, 'missing.pem'), /cannot read the file: ENOENT/],
        [dir, /cannot read the file: EISDIR/],
        [notPem, /expected a PEM file holding at least one certificate/],
      ]
      for (const [file, reason] of cases)
        expect(() => loadConfig({ env: { FLEET_REDIS_TLS_CA: file } })).toThrow(
          expect.objectContaining({
            code: 'FLEET_E_CONFIG_INVALID',
            setting: 'FLEET_REDIS_TLS_CA',
            message: expect.stringMatching(reason),
          }),
        )
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
