/**
 * Redis connections. The store Redis holds sessions, queues and the registry and must not lose writes;
 * the cache Redis may lose anything. Both connections retry forever with a capped backoff, so a process
 * survives a Redis restart; commands issued while Redis is away fail fast instead of queueing without bound.
 */
import { Redis, type RedisOptions } from 'ioredis'

export type { Redis }

export interface RedisConnectOptions {
  /** Connection name shown by CLIENT LIST. */
  name?: string
  /** Fail commands at once while disconnected (true for the cache: a miss beats a wait). */
  failFast?: boolean
  /** Extra ioredis options (BullMQ needs maxRetriesPerRequest: null). */
  extra?: RedisOptions
  /** Called with each connection error (they are retried; this is for logging). */
  onError?: (err: Error) => void
}

/** Opens a connection to `url`; it reconnects by itself with a backoff capped at 2 s. */
export function connectRedis(url: string, options: RedisConnectOptions = {}): Redis {
  const redis = new Redis(url, {
    connectionName: options.name,
    lazyConnect: false,
    enableOfflineQueue: !options.failFast,
    maxRetriesPerRequest: options.failFast ? 0 : 3,
    connectTimeout: 5_000,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
    ...options.extra,
  })
  // Connection errors are retried by the strategy above and surface as failed commands; without a
  // listener ioredis would print each one to stderr.
  redis.on('error', (err) => options.onError?.(err))
  return redis
}
