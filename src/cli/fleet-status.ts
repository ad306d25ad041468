/** `fleet status --fleet`: the registry's view of every process on every host (src/registry/fleet-status.ts). */
import { ConfigMissingError } from '../config/errors.js'
import type { Config } from '../config/index.js'
import { connectRedis } from '../redis/connect.js'
import { RegistryUnavailableError } from '../registry/errors.js'
import { readFleet, renderFleet } from '../registry/fleet-status.js'
import { withStackStores } from '../stack/stores.js'

/** The fleet's status as text (or JSON), from the registry of `config`'s store Redis (else the local `fleet up`'s). */
export async function statusFromRegistry(given: Config, json: boolean): Promise<string> {
  const config = await withStackStores(given)
  if (!config.redisUrl)
    throw new ConfigMissingError(
      'REDIS_URL',
      'fleet status --fleet reads the registry in the store Redis: set REDIS_URL (or --redis-url), or run it in the folder of a running fleet up (--data-dir)',
    )
  const redis = connectRedis(config.redisUrl, {
    name: 'fleet-status',
    extra: { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 1, commandTimeout: 2_000 },
  })
  try {
    await redis.connect()
  } catch (err) {
    redis.disconnect()
    throw new RegistryUnavailableError(config.redisUrl, { cause: err })
  }
  try {
    const report = await readFleet(redis, config.redisPrefix)
    return json ? JSON.stringify(report, null, 2) : renderFleet(report)
  } finally {
    redis.disconnect()
  }
}
