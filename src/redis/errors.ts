/** Errors of Fleet's Redis connections (codes listed in docs/errors.md). */
import { FleetError } from '../errors.js'

/**
 * A Redis URL (`REDIS_URL`, `CACHE_REDIS_URL`) cannot be used: not `redis://`, `rediss://`,
 * `redis+sentinel://host:port,host:port/<masterName>` or `rediss+sentinel://...`, or a part of it is
 * malformed. The message names the part; a password in the URL is never repeated in it.
 */
export class RedisUrlError extends FleetError {
  static override code = 'FLEET_E_REDIS_URL_INVALID'
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`${url} is not a usable Redis URL: ${reason}`)
  }
}

/**
 * A write to the store Redis was made but fewer replicas than FLEET_STORE_WAIT_REPLICAS confirmed it within
 * FLEET_STORE_WAIT_TIMEOUT (`WAIT`), or the connection changed before they did: it is not acknowledged,
 * since a failover could lose it. It may still have been applied (and may survive): retry with the same
 * Idempotency-Key.
 */
export class StoreNotReplicatedError extends FleetError {
  static override code = 'FLEET_E_REDIS_NOT_REPLICATED'
  static override statusCode = 503
  constructor(
    readonly wanted: number,
    readonly confirmed: number,
    readonly timeoutMs: number,
    reason?: string,
    options?: ErrorOptions,
  ) {
    super(
      reason ??
        `the store Redis confirmed this write on ${confirmed} of the ${wanted} replicas it needs within ${timeoutMs} ms; it is not acknowledged, retry shortly`,
      { ...options, details: { replicas: wanted, confirmed } },
    )
  }
}
