/**
 * Login throttling in the store Redis, per account and per client address (as Laravel's login throttle and
 * Rails 8's `rate_limit`): after FLEET_LOGIN_MAX_FAILURES failed logins for one account, or
 * FLEET_LOGIN_MAX_FAILURES_PER_ADDRESS from one address, within FLEET_LOGIN_WINDOW, the next attempt is
 * refused with 429 `FLEET_E_HTTP_LOGIN_THROTTLED` and `Retry-After` until that window ends, whatever the
 * password. A success resets the account's count. Web servers keep nothing: every count is a Redis hash, so
 * all of them share one limit.
 *
 * An attempt is counted before the password is checked (a reservation), so a burst of parallel guesses cannot
 * pass the limit; a success, or an attempt that ended without an answer on the password (the database was
 * down), gives its reservation back.
 */
import { createHash } from 'node:crypto'
import type { Config } from '../config/index.js'
import type { Redis } from '../redis/connect.js'
import { LoginThrottledError, UnavailableError } from './errors.js'

/**
 * KEYS: the counters (account, address); ARGV[1] now (ms), ARGV[2] window (ms), ARGV[2 + i] the limit of
 * KEYS[i] (0: no limit). Each counter is a hash { n = failures, reset = when its window ends (ms) }.
 * When a counter is at its limit within its window, nothing changes and the script returns
 * { i, ms until that window ends } for the counter that blocks longest; else it counts one attempt on every
 * counter (a counter whose window ended starts a new one) and returns { 0, 0 }.
 */
const ATTEMPT = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local counts, resets = {}, {}
local blocked, wait = 0, 0
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'n', 'reset')
  local n, reset = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  if reset <= now then n = 0 end
  counts[i], resets[i] = n, reset
  local limit = tonumber(ARGV[2 + i])
  if limit > 0 and n >= limit and reset - now > wait then
    blocked, wait = i, reset - now
  end
end
if blocked > 0 then return { blocked, wait } end
for i, key in ipairs(KEYS) do
  if counts[i] == 0 then
    redis.call('HSET', key, 'n', 1, 'reset', now + window)
    redis.call('PEXPIRE', key, window)
  else
    redis.call('HINCRBY', key, 'n', 1)
  end
end
return { 0, 0 }
`

/**
 * KEYS[1] the account's counter, KEYS[2..] counters to give one reservation back to (the address).
 * ARGV[1] 1 to delete KEYS[1] (a success), 0 to give it one back too. Returns nothing.
 */
const SETTLE = `
for i, key in ipairs(KEYS) do
  if i == 1 and ARGV[1] == '1' then
    redis.call('DEL', key)
  elseif tonumber(redis.call('HGET', key, 'n') or '0') > 0 then
    redis.call('HINCRBY', key, 'n', -1)
  end
end
return 0
`

interface ThrottleCommands {
  fleetLoginAttempt(
    account: string,
    address: string,
    now: number,
    windowMs: number,
    accountLimit: number,
    addressLimit: number,
  ): Promise<[number, number]>
  fleetLoginSettle(account: string, address: string, reset: 0 | 1): Promise<number>
}

/** Who is trying to log in: the account (an email, any case) and the client address (`request.ip`). */
export interface LoginAttempt {
  account: string
  address: string
}

/** One counted attempt. A wrong password leaves it counted; the other two outcomes settle it. */
export interface LoginReservation {
  /** The password was right: the account's count starts again; the address gets its attempt back. */
  succeeded(): Promise<void>
  /** No answer on the password (an error, such as the database being down): both get the attempt back. */
  aborted(): Promise<void>
}

export interface LoginThrottleOptions {
  prefix: string
  windowMs: number
  /** Failures per account within the window; 0: no limit. */
  accountLimit: number
  /** Failures per address within the window; 0: no limit. */
  addressLimit: number
  /** The clock (ms), injectable for tests. */
  now?: () => number
}

/** Runs a store command; a Redis failure is a 503 the client may retry, never a silent pass. */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof LoginThrottledError) throw err
    throw new UnavailableError('the login throttle is unavailable; retry shortly', { cause: err })
  }
}

export class LoginThrottle {
  readonly #redis: Redis & ThrottleCommands
  readonly #o: Required<LoginThrottleOptions>

  constructor(redis: Redis, options: LoginThrottleOptions) {
    if (!('fleetLoginAttempt' in redis)) {
      redis.defineCommand('fleetLoginAttempt', { numberOfKeys: 2, lua: ATTEMPT })
      redis.defineCommand('fleetLoginSettle', { numberOfKeys: 2, lua: SETTLE })
    }
    this.#redis = redis as Redis & ThrottleCommands
    this.#o = { now: Date.now, ...options }
  }

  /** The counter keys of an attempt; one hash tag, so the scripts' keys share a Cluster slot. */
  keys(attempt: LoginAttempt): [string, string] {
    const account = createHash('sha256').update(attempt.account.trim().toLowerCase()).digest('base64url')
    const base = `${this.#o.prefix}{login-throttle}`
    return [`${base}:account:${account}`, `${base}:address:${attempt.address}`]
  }

  /**
   * Counts one attempt, or throws LoginThrottledError (429) when the account or the address is at its limit.
   * @example const r = await throttle.attempt({ account: email, address: request.ip }); ...; await r.succeeded()
   */
  async attempt(attempt: LoginAttempt): Promise<LoginReservation> {
    const [account, address] = this.keys(attempt)
    const { windowMs, accountLimit, addressLimit } = this.#o
    const [blocked, waitMs] = await guard(() =>
      this.#redis.fleetLoginAttempt(account, address, this.#o.now(), windowMs, accountLimit, addressLimit),
    )
    if (blocked > 0)
      throw new LoginThrottledError(
        blocked === 1 ? 'account' : 'address',
        Math.max(1, Math.ceil(waitMs / 1000)),
      )
    const settle = (reset: 0 | 1) =>
      guard(async () => void (await this.#redis.fleetLoginSettle(account, address, reset)))
    return { succeeded: () => settle(1), aborted: () => settle(0) }
  }
}

type ThrottleDeps = {
  redis: Redis
  config: Pick<Config, 'redisPrefix' | 'loginWindow' | 'loginMaxFailures' | 'loginMaxFailuresPerAddress'>
}
const throttles = new WeakMap<ThrottleDeps, LoginThrottle>()

/**
 * The login throttle of a web process, configured by FLEET_LOGIN_* (one per deps, shared by its routes).
 * @example const attempt = await loginThrottle(deps).attempt({ account: email, address: request.ip })
 */
export function loginThrottle(deps: ThrottleDeps): LoginThrottle {
  let t = throttles.get(deps)
  if (!t) {
    t = new LoginThrottle(deps.redis, {
      prefix: deps.config.redisPrefix,
      windowMs: deps.config.loginWindow,
      accountLimit: deps.config.loginMaxFailures,
      addressLimit: deps.config.loginMaxFailuresPerAddress,
    })
    throttles.set(deps, t)
  }
  return t
}
