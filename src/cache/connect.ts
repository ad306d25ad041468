/** The cache's Redis connection: fail fast while disconnected, and a per-command timeout (the breaker counts both). */
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
  if (!url) throw new Error('neither CACHE_REDIS_URL nor REDIS_URL is set')
  return connectRedis(url, {
    ...options,
    failFast: true,
    extra: { commandTimeout: config.cacheRedisTimeout },
  })
}
