import { setting } from '../define.js'

/** The query cache and object cache (see docs/cache.md). */
export const cacheSettings = {
  cacheEnabled: setting.bool({
    env: 'FLEET_CACHE',
    doc: 'Serve reads through the cache Redis (false: every read goes to PostgreSQL, X-Cache: BYPASS).',
    default: true,
  }),
  cacheTtl: setting.duration({
    env: 'FLEET_CACHE_TTL',
    doc: 'How long a cached query or object is fresh (a class or a call may set its own).',
    default: '60s',
    min: '1ms',
  }),
  cacheGrace: setting.duration({
    env: 'FLEET_CACHE_GRACE',
    doc: 'How long an expired (but still valid) entry is kept to be served stale when the loader fails or is slow.',
    default: '10m',
  }),
  cacheSoftTimeout: setting.duration({
    env: 'FLEET_CACHE_SOFT_TIMEOUT',
    doc: 'A loader slower than this serves the stale entry (when there is one) and finishes in the background.',
    default: '200ms',
  }),
  cacheHardTimeout: setting.duration({
    env: 'FLEET_CACHE_HARD_TIMEOUT',
    doc: 'A loader slower than this fails the read with FLEET_E_CACHE_LOADER_TIMEOUT (504).',
    default: '10s',
    min: '1ms',
  }),
  cacheLockTtl: setting.duration({
    env: 'FLEET_CACHE_LOCK_TTL',
    doc: 'Lifetime of the fill lock one server takes on a miss (the others wait for its result).',
    default: '10s',
    min: '10ms',
  }),
  cacheLockWait: setting.duration({
    env: 'FLEET_CACHE_LOCK_WAIT',
    doc: 'Longest a read waits for another server to fill the entry before it loads from PostgreSQL itself.',
    default: '3s',
  }),
  cacheRedisTimeout: setting.duration({
    env: 'FLEET_CACHE_REDIS_TIMEOUT',
    doc: 'Longest one cache Redis command may take before it counts as a failure (and the read goes to PostgreSQL).',
    default: '250ms',
    min: '1ms',
  }),
  cacheBreakerThreshold: setting.int({
    env: 'FLEET_CACHE_BREAKER_THRESHOLD',
    doc: 'Consecutive cache Redis failures that open the circuit breaker (reads then bypass the cache).',
    default: 3,
    min: 1,
    max: 1000,
    unit: 'failures',
  }),
  cacheBreakerCooldown: setting.duration({
    env: 'FLEET_CACHE_BREAKER_COOLDOWN',
    doc: 'How long the open breaker bypasses the cache before one probe tries the cache Redis again.',
    default: '1s',
    min: '1ms',
  }),
  cacheTokenTtl: setting.duration({
    env: 'FLEET_CACHE_TOKEN_TTL',
    doc: 'Lifetime of a tag token without use; an entry whose token expired is a miss (keeps memory bounded).',
    default: '1d',
    min: '1s',
  }),
  cacheInstallTriggers: setting.bool({
    env: 'FLEET_CACHE_INSTALL_TRIGGERS',
    doc: 'Install the invalidation triggers on every table of the schema at start (needed to see writes made outside Fleet).',
    default: true,
  }),
}
