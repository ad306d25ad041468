import type { Command } from 'commander'
import { ConfigMissingError } from '../config/errors.js'
import { type Config, loadConfig } from '../config/index.js'
import { connectRedis, type Redis } from '../redis/connect.js'
import { withStackStores } from '../stack/stores.js'

/** Settings the cache commands read, as flags (they are not `addSettingOptions` settings of this command). */
function withConnection(cmd: Command): Command {
  return cmd
    .option('--cache-redis-url <url>', 'The cache Redis [CACHE_REDIS_URL] (default: REDIS_URL)')
    .option('--redis-url <url>', 'The store Redis [REDIS_URL], used when no cache Redis is set')
    .option('--redis-prefix <text>', 'Key prefix [FLEET_REDIS_PREFIX] (default: fleet:)')
    .option(
      '--data-dir <text>',
      'The folder of a running fleet up whose cache Redis to use [FLEET_DATA_DIR] (default: ./data)',
    )
}

/** The command's settings; the cache Redis of the `fleet up` running in the data folder when none is given. */
async function configOf(opts: Record<string, unknown>): Promise<Config> {
  const flags: Record<string, string> = {}
  for (const k of ['cacheRedisUrl', 'redisUrl', 'redisPrefix', 'dataDir'] as const)
    if (typeof opts[k] === 'string') flags[k] = opts[k] as string
  return withStackStores(loadConfig({ flags }))
}

async function withRedis<T>(config: Config, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const url = config.cacheRedisUrl ?? config.redisUrl
  if (!url)
    throw new ConfigMissingError(
      'CACHE_REDIS_URL',
      `no fleet up runs on ${config.dataDir} to take the cache Redis from: set redis://... (or REDIS_URL, or --cache-redis-url), or run this in the folder of a running fleet up (--data-dir)`,
    )
  const redis = connectRedis(url, {
    name: 'fleet-cache-cli',
    extra: { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 },
  })
  try {
    await redis.connect().catch(() => {})
    return await fn(redis)
  } finally {
    redis.disconnect()
  }
}

/** `fleet cache stats` and `fleet cache flush [--tag TAG]`: look at and invalidate the cache. */
export function registerCache(program: Command): void {
  const cache = program.command('cache').description('Inspect or invalidate the query and object cache.')
  withConnection(
    cache
      .command('stats')
      .description('Show hit/miss/fill counters (all processes), keys and memory of the cache Redis.')
      .option('--json', 'print JSON'),
  ).action(async (opts: Record<string, unknown>) => {
    const config = await configOf(opts)
    const { cacheReport } = await import('../cache/admin.js')
    const report = await withRedis(config, (r) => cacheReport(r, config.redisPrefix))
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(report)}\n`)
      return
    }
    const c = report.counters
    const reads = (c.hit ?? 0) + (c.miss ?? 0) + (c.invalid ?? 0) + (c.expired ?? 0)
    const ratio = reads > 0 ? `${(((c.hit ?? 0) / reads) * 100).toFixed(1)}%` : '-'
    const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`
    const lines = [
      `reads        ${reads} (hit ratio ${ratio})`,
      `  hit        ${c.hit ?? 0}`,
      `  miss       ${c.miss ?? 0}  (absent)`,
      `  invalid    ${c.invalid ?? 0}  (a tag changed since the entry was built)`,
      `  expired    ${c.expired ?? 0}  (past TTL, inside grace)`,
      `fills        ${c.fill ?? 0} stored, ${c.refused ?? 0} refused as stale`,
      `invalidated  ${c.invalidate ?? 0} tags`,
      `keys         ${report.keys.entries} entries, ${report.keys.tokens} tokens, ${report.keys.locks} fill locks`,
      `memory       ${mb(report.memory.usedBytes)} of ${report.memory.maxBytes ? mb(report.memory.maxBytes) : 'no limit'} (${report.memory.policy}), ${report.memory.evictedKeys} keys evicted`,
    ]
    process.stdout.write(`${lines.join('\n')}\n`)
  })
  withConnection(
    cache
      .command('flush')
      .description('Invalidate everything (and delete the entries), or only what depends on --tag.')
      .option(
        '--tag <tag>',
        'a table (products), an entity (products:42) or a column value (reviews.product_id:42)',
      ),
  ).action(async (opts: Record<string, unknown>) => {
    const config = await configOf(opts)
    const tag = typeof opts.tag === 'string' ? opts.tag : undefined
    const { flushCache } = await import('../cache/admin.js')
    const deleted = await withRedis(config, (r) => flushCache(r, config.redisPrefix, tag))
    process.stdout.write(
      tag === undefined
        ? `cache flushed: every entry invalidated, ${deleted} deleted\n`
        : `cache: tag ${tag} invalidated\n`,
    )
  })
}
