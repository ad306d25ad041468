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
 * down), gives its reservation back. Windows are timed by the Redis clock (the scripts in scripts.ts read
 * TIME), so web servers whose clocks disagree still apply one window.
 */
import { createHash } from 'node:crypto'
import { type AppDeps, processDeps } from '../process/deps.js'
import type { Redis } from '../redis/connect.js'
import { LoginThrottledError, UnavailableError } from './errors.js'
import { scripts } from './scripts.js'

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

/** Failed sign-ins counted per account and per address in Redis (windows on Redis's clock); `loginThrottle(deps)` makes one per process. */
export class LoginThrottle {
  readonly #redis: Redis
  readonly #o: LoginThrottleOptions

  constructor(redis: Redis, options: LoginThrottleOptions) {
    this.#redis = redis
    this.#o = { ...options }
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
    const [blocked, waitMs] = (await guard(() =>
      scripts.loginAttempt.run(this.#redis, [account, address], [windowMs, accountLimit, addressLimit]),
    )) as [number, number]
    if (blocked > 0)
      throw new LoginThrottledError(
        blocked === 1 ? 'account' : 'address',
        Math.max(1, Math.ceil(waitMs / 1000)),
      )
    const settle = (reset: 0 | 1) =>
      guard(async () => void (await scripts.loginSettle.run(this.#redis, [account, address], [reset])))
    return { succeeded: () => settle(1), aborted: () => settle(0) }
  }
}

const throttles = new WeakMap<AppDeps, LoginThrottle>()

/**
 * The login throttle of a web process, configured by FLEET_LOGIN_* (one per deps, shared by its routes).
 * @example const attempt = await loginThrottle(deps).attempt({ account: email, address: request.ip })
 */
export function loginThrottle(appDeps: AppDeps): LoginThrottle {
  let t = throttles.get(appDeps)
  if (!t) {
    const deps = processDeps(appDeps)
    t = new LoginThrottle(deps.redis, {
      prefix: deps.config.redisPrefix,
      windowMs: deps.config.loginWindow,
      accountLimit: deps.config.loginMaxFailures,
      addressLimit: deps.config.loginMaxFailuresPerAddress,
    })
    throttles.set(appDeps, t)
  }
  return t
}
