/**
 * The stores of a running `fleet up`, for the operator commands run beside it (`fleet migrate`, `seed`,
 * `jobs`, `cache`): run in the folder of a stack, they use that stack's PostgreSQL and Redis servers as its
 * own processes do, asked through its control socket (`<data dir>/fleet.sock`, readable by its owner only).
 * A URL given as a setting (environment or flag) always wins.
 */
import type { Config } from '../config/index.js'
import { runningStackStores } from '../stack/stores.js'

/**
 * `config` with the store URLs it does not set taken from the `fleet up` running on its data folder (as
 * is, when none runs there).
 */
export async function withStackStores(config: Config): Promise<Config> {
  if (config.databaseUrl && config.redisUrl && config.cacheRedisUrl) return config
  const stores = await runningStackStores(config.dataDir)
  if (!stores) return config
  return Object.freeze({
    ...config,
    databaseUrl: config.databaseUrl ?? stores.databaseUrl,
    redisUrl: config.redisUrl ?? stores.redisUrl,
    cacheRedisUrl: config.cacheRedisUrl ?? stores.cacheRedisUrl,
  })
}
