/**
 * Acknowledged writes to the store Redis. Redis replicates asynchronously: a primary that answers "OK" and
 * dies before its replicas have the write loses it in the failover that follows. So a write that Fleet
 * acknowledges to a client (a 202 for a job, a login, a cart line) is first confirmed by
 * FLEET_STORE_WAIT_REPLICAS replicas with `WAIT <replicas> <timeout ms>`; when fewer confirm it in time the
 * client gets a 503 (FLEET_E_REDIS_NOT_REPLICATED) instead of an acknowledgment. With 0 (a single Redis)
 * nothing changes: the write goes on the store connection and is acknowledged when it answers.
 *
 * `WAIT` counts the writes of its own connection, so each write and its `WAIT` go over one connection, the
 * store connection's duplicate kept for acknowledged writes (`WAIT` blocks its connection: reads do not queue
 * behind it). A reconnect between the write and the answer of its `WAIT` (a failover) could put the `WAIT` on
 * another server, where it would confirm nothing of the write: that is answered with the 503 too.
 */
import { connectionEpoch, type Redis, trackCloses } from './connect.js'
import { StoreNotReplicatedError } from './errors.js'

/** How many replicas must confirm an acknowledged write, and how long to wait for them. */
export interface WriteConcern {
  /** Replicas that must have the write (`WAIT <replicas>`); 0: no wait. */
  replicas: number
  /** Longest wait for them, in ms (at least 1: `WAIT n 0` would wait forever). */
  timeoutMs: number
}

interface Concerned {
  concern: WriteConcern
  /** The connection acknowledged writes go over, opened on first use. */
  durable?: Redis
  onError?: (err: Error) => void
}

const concerns = new WeakMap<Redis, Concerned>()

/**
 * Sets the write concern of the store connection `redis`: `acknowledged(redis, ...)` waits for `replicas`.
 * @example setWriteConcern(redis, { replicas: config.storeWaitReplicas, timeoutMs: config.storeWaitTimeout })
 */
export function setWriteConcern(redis: Redis, concern: WriteConcern, onError?: (err: Error) => void): void {
  if (concern.replicas <= 0) {
    concerns.delete(redis)
    return
  }
  concerns.set(redis, { concern: { ...concern, timeoutMs: Math.max(1, concern.timeoutMs) }, onError })
}

/** The write concern of `redis` (replicas 0 when none was set). */
export function writeConcernOf(redis: Redis): WriteConcern {
  return concerns.get(redis)?.concern ?? { replicas: 0, timeoutMs: 0 }
}

/**
 * The connection acknowledged writes of `redis` go over: `redis` itself without a write concern, else its
 * duplicate (same server, same options), closed when `redis` ends.
 */
export function durableConnection(redis: Redis): Redis {
  const c = concerns.get(redis)
  if (!c) return redis
  if (!c.durable) {
    const name = redis.options.connectionName
    const durable = redis.duplicate({
      connectionName: name ? `${name}:ack` : undefined,
      // The WAIT may take up to its timeout; a command waits at most that plus a second on this connection.
      commandTimeout: c.concern.timeoutMs + 1_000,
    })
    trackCloses(durable) // (a duplicate of a connectRedis connection has both already)
    if (durable.listenerCount('error') === 0) durable.on('error', (err) => c.onError?.(err))
    redis.once('end', () => durable.disconnect())
    c.durable = durable
  }
  return c.durable
}

/**
 * Runs `write` on the durable connection of `redis`, then waits for the replicas its write concern asks
 * for; resolves with what `write` resolved with once they have it, or throws StoreNotReplicatedError (503).
 * Without a write concern it is `write(redis)`.
 * @example await acknowledged(redis, (r) => r.hset(key, fields))
 */
export async function acknowledged<T>(redis: Redis, write: (conn: Redis) => Promise<T>): Promise<T> {
  const c = concerns.get(redis)
  if (!c) return write(redis)
  const conn = durableConnection(redis)
  const { replicas, timeoutMs } = c.concern
  const before = connectionEpoch(conn)
  const result = await write(conn)
  let confirmed: number
  try {
    confirmed = await conn.wait(replicas, timeoutMs)
  } catch (err) {
    throw new StoreNotReplicatedError(
      replicas,
      0,
      timeoutMs,
      `the store Redis did not answer WAIT (${(err as Error).message}); this write is not acknowledged, retry shortly`,
      { cause: err },
    )
  }
  if (connectionEpoch(conn) !== before) {
    throw new StoreNotReplicatedError(
      replicas,
      0,
      timeoutMs,
      'the connection to the store Redis was lost before its replicas confirmed this write (a failover?); it is not acknowledged, retry shortly',
    )
  }
  if (confirmed < replicas) throw new StoreNotReplicatedError(replicas, confirmed, timeoutMs)
  return result
}

/** Replicas connected to the server `redis` talks to now (`connected_slaves` of INFO replication). */
export async function replicasOnline(redis: Redis): Promise<number> {
  const info = await redis.info('replication')
  return Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0)
}
