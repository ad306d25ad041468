/** Fleet's cache component: see docs/cache.md. */
export { Breaker, type BreakerState } from './breaker.js'
export {
  type AssembleContext,
  Cache,
  type CacheConfig,
  type CacheDeps,
  type CachedClass,
  type CacheOptions,
  type CacheStats,
  type CacheStatus,
  createCache,
  type Depend,
  type ObjectSpec,
  worstStatus,
} from './cache.js'
export { type CachedQuery, type CachedQueryOptions, defineQuery } from './cached-query.js'
export { connectCacheRedis } from './connect.js'
export * from './errors.js'
export { type BuildContext, type BuiltResponse, defineResponse, type ResponseSpec } from './responses.js'
export { type AnyClass, pack, registerClass, unpack } from './serializer.js'
