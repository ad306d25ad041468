import { setting } from '../define.js'

/** The query cache and object cache (see docs/cache.md). */
export const cacheSettings = {
  cacheEnabled: setting.bool({
    env: 'FLEET_CACHE',
    doc: 'Serve reads through the cache Redis (false: every read goes to PostgreSQL, X-Cache: BYPASS).',
    default: true,
  }),
}
