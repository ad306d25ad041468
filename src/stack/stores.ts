/**
 * The stores of a running `fleet up`, for what runs beside it in its folder (`fleet migrate`, `seed`, `jobs`,
 * `cache`; an app's tests): they use that stack's PostgreSQL and Redis servers as its own processes do,
 * asked through its control socket (`<data dir>/fleet.sock`, readable by its owner only). A URL given as a
 * setting (environment or flag) always wins.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import type { Config } from '../config/index.js'
import { requestStatus } from './control.js'
import type { StatusReport } from './status.js'

/** The stores of the `fleet up` running on `dataDir`; undefined when none runs there (or it did not answer). */
export async function runningStackStores(dataDir: string): Promise<StatusReport['stores']> {
  const socket = path.join(path.resolve(dataDir), 'fleet.sock')
  if (!existsSync(socket)) return undefined
  return requestStatus(socket, 1_000).then(
    (report) => report.stores,
    () => undefined,
  )
}

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
