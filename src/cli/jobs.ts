import type { Command } from 'commander'
import { loadConfig } from '../config/index.js'

/** `fleet jobs stats`: queue depths and recent durations per job type, across every worker. */
export function registerJobs(program: Command): void {
  const jobs = program.command('jobs').description('Inspect the job queues.')
  jobs
    .command('stats')
    .description(
      'Per job type: queued, active, delayed, kept completed/failed (Redis), and jobs ended in the last hour ' +
        'with p50/p99 durations (PostgreSQL, when DATABASE_URL is set).',
    )
    .option('--redis-url <url>', 'The store Redis [REDIS_URL]')
    .option('--database-url <url>', 'PostgreSQL [DATABASE_URL]')
    .option('--redis-prefix <text>', 'Key prefix [FLEET_REDIS_PREFIX] (default: fleet:)')
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, unknown>) => {
      const flags: Record<string, string> = {}
      for (const k of ['redisUrl', 'databaseUrl', 'redisPrefix'] as const) {
        if (typeof opts[k] === 'string') flags[k] = opts[k] as string
      }
      const config = loadConfig({ flags })
      const [
        { Database },
        { createPool },
        { builtinJobTypes, loadJobModules },
        stats_,
        { connectRedis },
        shop,
      ] = await Promise.all([
        import('../db/database.js'),
        import('../db/pool.js'),
        import('../jobs/catalog.js'),
        import('../jobs/stats.js'),
        import('../redis/connect.js'),
        import('./worker-types.js'),
      ])
      const { formatJobStats, jobStats } = stats_
      const { shopJobTypes } = shop
      const redis = connectRedis(config.redisUrl ?? 'redis://127.0.0.1:6380', {
        name: 'fleet-jobs-cli',
        extra: { retryStrategy: () => null, maxRetriesPerRequest: 1 },
      })
      const db = config.databaseUrl ? new Database(createPool({ ...config, dbPoolMax: 2 })) : undefined
      try {
        const types = [...builtinJobTypes, ...shopJobTypes, ...(await loadJobModules(config.jobModules))]
        const stats = await jobStats(
          { config, redis, db },
          types.map((t) => t.name),
        )
        process.stdout.write(opts.json ? `${JSON.stringify(stats)}\n` : `${formatJobStats(stats)}\n`)
      } finally {
        redis.disconnect()
        await db?.pool.end()
      }
    })
}
