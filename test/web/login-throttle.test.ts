/**
 * The login throttle (src/web/login-throttle.ts) on a real Redis: the window (timed by the Redis clock, which
 * a test moves by shifting a counter's window end in Redis), the reservation under a parallel burst, the
 * per-address limit, and what a success and an abort give back.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { LoginThrottledError } from '../../src/web/errors.js'
import { LoginThrottle, type LoginThrottleOptions } from '../../src/web/login-throttle.js'
import { createTestContext, type TestContext, uniqueId } from '../support/context.js'

let ctx: TestContext

beforeAll(async () => {
  ctx = await createTestContext({ migrate: false })
})
afterAll(async () => {
  await ctx?.cleanup()
})
afterEach(() => {
  vi.useRealTimers()
})

function throttle(o: Partial<LoginThrottleOptions> = {}): LoginThrottle {
  return new LoginThrottle(ctx.redis, {
    prefix: `${ctx.config.redisPrefix}${uniqueId()}:`,
    windowMs: 60_000,
    accountLimit: 3,
    addressLimit: 100,
    ...o,
  })
}

/** The Redis server's clock, ms since the epoch. */
async function redisNow(): Promise<number> {
  const [s, us] = await ctx.redis.time()
  return Number(s) * 1000 + Math.floor(Number(us) / 1000)
}

/** Lets `ms` of an account's window pass: its end (Redis clock) moves that much earlier. */
async function age(t: LoginThrottle, account: string, ms: number): Promise<void> {
  const [key] = t.keys({ account, address: '' })
  await ctx.redis.hincrby(key, 'reset', -ms)
}

/** The error an attempt throws, or undefined when it was let through (the reservation is kept: a failure). */
async function refused(t: LoginThrottle, account: string, address = '10.0.0.1') {
  try {
    await t.attempt({ account, address })
    return undefined
  } catch (err) {
    if (err instanceof LoginThrottledError) return err
    throw err
  }
}

describe('login throttle', () => {
  it('refuses an account after its limit until the window ends, whatever the password', async () => {
    const t = throttle()
    for (let i = 0; i < 3; i++) expect(await refused(t, 'ada@example.test')).toBeUndefined()
    await age(t, 'ada@example.test', 20_000)
    const err = await refused(t, 'ADA@example.test ') // the same account, however it is written
    expect(err).toBeInstanceOf(LoginThrottledError)
    expect(err?.code).toBe('FLEET_E_HTTP_LOGIN_THROTTLED')
    expect(err?.statusCode).toBe(429)
    expect(err?.scope).toBe('account')
    expect(err?.retryAfter).toBe(40) // the window started at the first failure
    expect(err?.details).toEqual({ scope: 'account', retryAfter: 40 })
    // A refused attempt does not extend the window or count.
    await age(t, 'ada@example.test', 39_000)
    expect((await refused(t, 'ada@example.test'))?.retryAfter).toBe(1)
    await age(t, 'ada@example.test', 1_000)
    expect(await refused(t, 'ada@example.test')).toBeUndefined() // a new window
    // Other accounts were never affected.
    expect(await refused(t, 'bob@example.test')).toBeUndefined()
  })

  it('a success resets the account; an aborted attempt is given back', async () => {
    const t = throttle()
    await t.attempt({ account: 'cy@example.test', address: '10.0.0.2' })
    await t.attempt({ account: 'cy@example.test', address: '10.0.0.2' })
    const ok = await t.attempt({ account: 'cy@example.test', address: '10.0.0.2' })
    await ok.succeeded()
    for (let i = 0; i < 3; i++) expect(await refused(t, 'cy@example.test', '10.0.0.2')).toBeUndefined()
    expect(await refused(t, 'cy@example.test', '10.0.0.2')).toBeDefined()

    const u = throttle({ accountLimit: 1 })
    const aborted = await u.attempt({ account: 'di@example.test', address: '10.0.0.3' })
    await aborted.aborted()
    expect(await refused(u, 'di@example.test', '10.0.0.3')).toBeUndefined()
    expect(await refused(u, 'di@example.test', '10.0.0.3')).toBeDefined()
  })

  it('limits one address over many accounts, and not another address', async () => {
    const t = throttle({ accountLimit: 100, addressLimit: 5 })
    for (let i = 0; i < 5; i++) expect(await refused(t, `user-${i}@example.test`, '10.9.9.9')).toBeUndefined()
    const err = await refused(t, 'someone-else@example.test', '10.9.9.9')
    expect(err?.scope).toBe('address')
    expect(err?.retryAfter).toBe(60)
    expect(await refused(t, 'someone-else@example.test', '10.9.9.10')).toBeUndefined()
    // A success from that address gives its reservation back, so a busy office is not locked out by its
    // own logins; the account limit of the failed ones is untouched.
    const u = throttle({ accountLimit: 100, addressLimit: 2 })
    for (let i = 0; i < 5; i++)
      await (await u.attempt({ account: `ok-${i}`, address: '10.1.1.1' })).succeeded()
    expect(await refused(u, 'ok-x', '10.1.1.1')).toBeUndefined()
  })

  it('lets exactly the limit through when a burst arrives at once', async () => {
    const t = throttle({ accountLimit: 5 })
    const results = await Promise.all(Array.from({ length: 40 }, () => refused(t, 'burst@example.test')))
    expect(results.filter((r) => r === undefined)).toHaveLength(5)
    expect(results.filter((r) => r instanceof LoginThrottledError)).toHaveLength(35)
  })

  it('keeps nothing in the process: a second throttle on the same Redis sees the counts', async () => {
    const prefix = `${ctx.config.redisPrefix}${uniqueId()}:`
    const a = throttle({ prefix })
    const b = throttle({ prefix })
    for (let i = 0; i < 3; i++) await a.attempt({ account: 'ed@example.test', address: '10.0.0.4' })
    expect((await refused(b, 'ed@example.test', '10.0.0.4'))?.scope).toBe('account')
    const [accountKey] = b.keys({ account: 'ed@example.test', address: '10.0.0.4' })
    expect(accountKey).not.toContain('ed@example') // the email is hashed in the key
    expect(await ctx.redis.pttl(accountKey)).toBeGreaterThan(0) // it expires by itself
  })

  it('times its windows by the Redis clock, not by the clock of the web server', async () => {
    const t = throttle()
    const account = 'clock@example.test'
    const [key] = t.keys({ account, address: '' })
    // A web server whose clock is a day ahead starts a window that ends one window after Redis's now.
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime((await redisNow()) + 86_400_000)
    const before = await redisNow()
    await t.attempt({ account, address: '10.0.0.5' })
    const after = await redisNow()
    const reset = Number(await ctx.redis.hget(key, 'reset'))
    expect(reset).toBeGreaterThanOrEqual(before + 60_000)
    expect(reset).toBeLessThanOrEqual(after + 60_000)
    expect(await ctx.redis.pttl(key)).toBeLessThanOrEqual(60_000)
    expect(await ctx.redis.pttl(key)).toBeGreaterThan(59_000)
    // At the limit, with 5 s left by the Redis clock: refused for 5 s, though this clock says it is over.
    await ctx.redis.hset(key, 'n', 3, 'reset', (await redisNow()) + 5_000)
    expect((await refused(t, account, '10.0.0.5'))?.retryAfter).toBe(5)
    // Over by the Redis clock: a new window, though a clock an hour behind says it is not.
    vi.setSystemTime((await redisNow()) - 3_600_000)
    await ctx.redis.hset(key, 'reset', (await redisNow()) - 1)
    expect(await refused(t, account, '10.0.0.5')).toBeUndefined()
    expect(await ctx.redis.hget(key, 'n')).toBe('1')
  })

  it('a limit of 0 is no limit', async () => {
    const t = throttle({ accountLimit: 0, addressLimit: 0 })
    for (let i = 0; i < 20; i++) expect(await refused(t, 'free@example.test')).toBeUndefined()
  })
})
