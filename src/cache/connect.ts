/** The cache's Redis connection: fail fast while disconnected, and a per-command timeout (the breaker counts both). */

import { ConfigMissingError } from '../config/errors.js'
import type { Config } from '../config/index.js'
import { connectRedis, type Redis } from '../redis/connect.js'

/**
 * Connects to `config.cacheRedisUrl` (else `config.redisUrl`) the way the cache needs it.
 * @example const cache = await createCache({ redis: connectCacheRedis(config), db, config })
 */
export function connectCacheRedis(
  config: Pick<Config, 'cacheRedisUrl' | 'redisUrl' | 'cacheRedisTimeout'>,
  options: { name?: string; onError?: (err: Error) => void } = {},
): Redis {
  const url = config.cacheRedisUrl ?? config.redisUrl
  if (!url)
    throw new ConfigMissingError(
      'CACHE_REDIS_URL',
      'the cache needs a Redis: set it, or REDIS_URL to share the store',
    )
  return connectRedis(url, {
    ...options,
    failFast: true,
    extra: { commandTimeout: config.cacheRedisTimeout },
  })
}
