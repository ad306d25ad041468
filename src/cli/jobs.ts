import type { Command } from 'commander'
import { loadConfig } from '../config/index.js'
import { type CliApp, requireApp } from './app.js'

/** `fleet jobs stats`: queue depths and recent durations per job type, across every worker. */
export function registerJobs(program: Command, app: CliApp | undefined): void {
  const jobs = program.command('jobs').description('Inspect the job queues.')
  jobs
    .command('stats')
    .description(
      'Per job type: queued, active, delayed, kept completed/failed (Redis), and jobs ended in the last hour ' +
        'with p50/p99 durations (PostgreSQL, when DATABASE_URL is set).',
    )
    .option('--app <path>', 'The application module [FLEET_APP] (default: fleet.config.*, else the demo app)')
    .option('--redis-url <url>', 'The store Redis [REDIS_URL]')
    .option('--database-url <url>', 'PostgreSQL [DATABASE_URL]')
    .option('--redis-prefix <text>', 'Key prefix [FLEET_REDIS_PREFIX] (default: fleet:)')
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, unknown>) => {
      const flags: Record<string, string> = {}
      for (const k of ['redisUrl', 'databaseUrl', 'redisPrefix'] as const) {
        if (typeof opts[k] === 'string') flags[k] = opts[k] as string
      }
      const { app: fleetApp } = requireApp(app, 'jobs')
      const config = loadConfig({ flags, extra: fleetApp.settings })
      const [{ Database }, { createPool }, { appJobTypes }, { formatJobStats, jobStats }, { connectRedis }] =
        await Promise.all([
          import('../db/database.js'),
          import('../db/pool.js'),
          import('../app/runtime.js'),
          import('../jobs/stats.js'),
          import('../redis/connect.js'),
        ])
      const redis = connectRedis(config.redisUrl ?? 'redis://127.0.0.1:6380', {
        name: 'fleet-jobs-cli',
        extra: { retryStrategy: () => null, maxRetriesPerRequest: 1 },
      })
      const db = config.databaseUrl ? new Database(createPool({ ...config, dbPoolMax: 2 })) : undefined
      try {
        const types = await appJobTypes(fleetApp, { ...config, jobQueues: undefined })
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
