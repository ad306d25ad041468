/**
 * The forms a Redis URL takes in Fleet (`REDIS_URL`, `CACHE_REDIS_URL`):
 *
 * - `redis://[user:password@]host:port[/db]` and `rediss://...` (TLS): one server, as ioredis reads it.
 * - `redis+sentinel://[user:password@]h1:26379,h2:26379,h3:26379/<masterName>[?db=N&sentinelPassword=...]`:
 *   the primary that Redis Sentinel names `<masterName>`, asked of the listed Sentinels (port 26379 when
 *   omitted; IPv6 in brackets). `user:password` log in to the Redis servers; `sentinelUsername` and
 *   `sentinelPassword` to the Sentinels. Connections follow a failover by themselves (see connect.ts).
 * - `rediss+sentinel://...` (the same parts): TLS to the Sentinels and to the Redis servers they name, both.
 *
 * With TLS (`rediss://`, `rediss+sentinel://`) the servers' certificates are verified against the system's
 * CAs, or against the PEM file FLEET_REDIS_TLS_CA names (a private CA); see connect.ts.
 */
import { RedisUrlError } from './errors.js'

/** One Sentinel's address. */
export interface SentinelAddress {
  host: string
  port: number
}

/** What a Redis URL points at. */
export type RedisTarget =
  | {
      kind: 'server'
      url: string
      /** `rediss://`: TLS. */
      tls: boolean
    }
  | {
      kind: 'sentinel'
      /** `rediss+sentinel://`: TLS to the Sentinels and to the Redis servers. */
      tls: boolean
      sentinels: SentinelAddress[]
      /** The Sentinel master name of the primary. */
      masterName: string
      username?: string
      password?: string
      db: number
      sentinelUsername?: string
      sentinelPassword?: string
    }

const SENTINEL_SCHEMES = new Set(['redis+sentinel', 'rediss+sentinel'])
const SENTINEL_PARAMS = new Set(['db', 'sentinelPassword', 'sentinelUsername'])

/** `url` with the password of its userinfo replaced, for messages. */
export function redactRedisUrl(url: string): string {
  return url
    .replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@')
    .replace(/([?&]sentinelPassword=)[^&]*/g, '$1***')
}

function decode(url: string, part: string, what: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw new RedisUrlError(redactRedisUrl(url), `${what} is not valid percent-encoding`)
  }
}

function parseSentinel(url: string, text: string): SentinelAddress {
  const fail = (why: string) =>
    new RedisUrlError(redactRedisUrl(url), `Sentinel ${JSON.stringify(text)} ${why}`)
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+))(?::(\d*))?$/.exec(text)
  if (!m) throw fail('is not host:port')
  const host = m[1] ?? (m[2] as string)
  if (m[3] === '') throw fail('has an empty port')
  const port = m[3] === undefined ? 26379 : Number(m[3])
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw fail('has a port outside 1-65535')
  return { host, port }
}

/**
 * Reads a Redis URL; throws RedisUrlError (FLEET_E_REDIS_URL_INVALID) naming what is wrong.
 * @example parseRedisUrl('redis+sentinel://10.0.0.1,10.0.0.2:26380/store?db=1')
 *   // { kind: 'sentinel', tls: false, sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26380 }], masterName: 'store', db: 1 }
 */
export function parseRedisUrl(url: string): RedisTarget {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase()
  if (scheme === 'redis' || scheme === 'rediss') {
    try {
      new URL(url)
    } catch {
      throw new RedisUrlError(redactRedisUrl(url), 'expected redis://host:port[/db]')
    }
    return { kind: 'server', url, tls: scheme === 'rediss' }
  }
  if (!scheme || !SENTINEL_SCHEMES.has(scheme)) {
    throw new RedisUrlError(
      redactRedisUrl(url),
      'expected redis://host:port, rediss://host:port, redis+sentinel://host:26379,host:26379/<masterName> or rediss+sentinel://... (TLS)',
    )
  }
  const fail = (why: string) => new RedisUrlError(redactRedisUrl(url), why)
  let rest = url.slice(scheme.length + 3)
  const hash = rest.indexOf('#')
  if (hash >= 0) throw fail('a fragment (#...) has no meaning here')
  let query = ''
  const q = rest.indexOf('?')
  if (q >= 0) {
    query = rest.slice(q + 1)
    rest = rest.slice(0, q)
  }
  const slash = rest.indexOf('/')
  if (slash < 0) throw fail('the Sentinel master name is missing: end the URL with /<masterName>')
  let authority = rest.slice(0, slash)
  const path = rest.slice(slash + 1)
  let username: string | undefined
  let password: string | undefined
  const at = authority.lastIndexOf('@')
  if (at >= 0) {
    const userinfo = authority.slice(0, at)
    authority = authority.slice(at + 1)
    const colon = userinfo.indexOf(':')
    const user = colon >= 0 ? userinfo.slice(0, colon) : userinfo
    username = user ? decode(url, user, 'the user name') : undefined
    password = colon >= 0 ? decode(url, userinfo.slice(colon + 1), 'the password') : undefined
  }
  if (!authority) throw fail('no Sentinel is listed: give host:port[,host:port...]')
  const sentinels = authority.split(',').map((s) => parseSentinel(url, s))
  const seen = new Set<string>()
  for (const s of sentinels) {
    const key = `${s.host}:${s.port}`
    if (seen.has(key)) throw fail(`Sentinel ${key} is listed twice`)
    seen.add(key)
  }
  if (!path) throw fail('the Sentinel master name is missing: end the URL with /<masterName>')
  if (path.includes('/')) throw fail('the path is one Sentinel master name (give the database as ?db=N)')
  const masterName = decode(url, path, 'the master name')
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(masterName))
    throw fail(`master name ${JSON.stringify(masterName)} may hold only A-Z a-z 0-9 . _ - (1-100 characters)`)
  let db = 0
  let sentinelUsername: string | undefined
  let sentinelPassword: string | undefined
  const given = new Set<string>()
  for (const pair of query ? query.split('&') : []) {
    const eq = pair.indexOf('=')
    const key = eq >= 0 ? pair.slice(0, eq) : pair
    const value = decode(url, (eq >= 0 ? pair.slice(eq + 1) : '').replace(/\+/g, ' '), key)
    if (!SENTINEL_PARAMS.has(key))
      throw fail(`unknown parameter ${JSON.stringify(key)} (known: ${[...SENTINEL_PARAMS].join(', ')})`)
    if (given.has(key)) throw fail(`parameter ${key} is given twice`)
    given.add(key)
    if (key === 'db') {
      if (!/^\d{1,5}$/.test(value)) throw fail(`db must be a database number, not ${JSON.stringify(value)}`)
      db = Number(value)
    } else if (key === 'sentinelUsername') sentinelUsername = value
    else sentinelPassword = value
  }
  return {
    kind: 'sentinel',
    tls: scheme === 'rediss+sentinel',
    sentinels,
    masterName,
    username,
    password,
    db,
    sentinelUsername,
    sentinelPassword,
  }
}

/**
 * Checks a Redis URL setting (any form above), returning it unchanged; a plain Error with the reason, as
 * setting parsers throw (the config wraps it in FLEET_E_CONFIG_INVALID, with this error as its cause).
 */
export function checkRedisUrl(raw: string): string {
  try {
    parseRedisUrl(raw)
  } catch (err) {
    throw new Error((err as RedisUrlError).reason, { cause: err })
  }
  return raw
}
