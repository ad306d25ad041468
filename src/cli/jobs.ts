import type { Command } from 'commander'
import { ConfigMissingError } from '../config/errors.js'
import { type Config, loadConfig } from '../config/index.js'
import type { Redis } from '../redis/connect.js'
import { withStackStores } from '../stack/stores.js'
import { type CliApp, requireApp } from './app.js'

/** The options every `fleet jobs` command takes. */
function storeOptions(command: Command): Command {
  return command
    .option('--app <path>', 'The application module [FLEET_APP] (default: fleet.config.*, else the demo app)')
    .option('--redis-url <url>', 'The store Redis [REDIS_URL]')
    .option('--database-url <url>', 'PostgreSQL [DATABASE_URL]')
    .option('--redis-prefix <text>', 'Key prefix [FLEET_REDIS_PREFIX] (default: fleet:)')
    .option(
      '--data-dir <text>',
      'The folder of a running fleet up whose stores to use [FLEET_DATA_DIR] (default: ./data)',
    )
}

/** The config of a `fleet jobs` command, its app's job type names, and a store Redis that fails fast. */
async function open(app: CliApp | undefined, opts: Record<string, unknown>) {
  const flags: Record<string, string> = {}
  for (const k of ['redisUrl', 'databaseUrl', 'redisPrefix', 'dataDir'] as const) {
    if (typeof opts[k] === 'string') flags[k] = opts[k] as string
  }
  const { app: fleetApp } = requireApp(app, 'jobs')
  const config: Config = await withStackStores(loadConfig({ flags, extra: fleetApp.settings }))
  if (!config.redisUrl)
    throw new ConfigMissingError(
      'REDIS_URL',
      `no fleet up runs on ${config.dataDir} to take the store Redis from: set redis://... (or --redis-url), or run this in the folder of a running fleet up (--data-dir)`,
    )
  const [{ appJobTypes }, { connectRedis }, { JobsUnavailableError }] = await Promise.all([
    import('../app/manifest.js'),
    import('../redis/connect.js'),
    import('../jobs/errors.js'),
  ])
  const redis: Redis = connectRedis(config.redisUrl, {
    name: 'fleet-jobs-cli',
    extra: { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 1 },
  })
  await redis.connect().catch((err: unknown) => {
    redis.disconnect()
    throw new JobsUnavailableError({ cause: err })
  })
  const types = (await appJobTypes(fleetApp, { ...config, jobQueues: undefined })).map((t) => t.name)
  return { config, redis, types }
}

/** `fleet jobs stats` and `fleet jobs hand-off`. */
export function registerJobs(program: Command, app: CliApp | undefined): void {
  const jobs = program.command('jobs').description('Inspect the job queues.')
  storeOptions(
    jobs
      .command('stats')
      .description(
        'Per job type: queued, active, delayed, kept completed/failed (Redis), and jobs ended in the last hour ' +
          'with p50/p99 durations (PostgreSQL, when DATABASE_URL is set).',
      ),
  )
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, unknown>) => {
      const { config, redis, types } = await open(app, opts)
      const [{ Database }, { createPool }, { formatJobStats, jobStats }] = await Promise.all([
        import('../db/database.js'),
        import('../db/pool.js'),
        import('../jobs/stats.js'),
      ])
      const db = config.databaseUrl ? new Database(createPool({ ...config, dbPoolMax: 2 })) : undefined
      try {
        const stats = await jobStats({ config, redis, db }, types)
        process.stdout.write(opts.json ? `${JSON.stringify(stats)}\n` : `${formatJobStats(stats)}\n`)
      } finally {
        redis.disconnect()
        await db?.pool.end()
      }
    })
  storeOptions(
    jobs
      .command('hand-off')
      .argument('<worker>', 'the dead worker’s instance id (FLEET_INSTANCE_ID, as `processedBy` shows it)')
      .description(
        'Moves the active jobs of a worker that died back to their queues now, through BullMQ’s stalled ' +
          'check, instead of after their lock expires (FLEET_JOB_LOCK). `fleet up` does this by itself.',
      ),
  )
    .option('--force', 'hand on even if the registry still lists the worker as alive')
    .action(async (worker: string, opts: Record<string, unknown>) => {
      const { config, redis, types } = await open(app, opts)
      const [{ handOffJobs }, { Registry }, { WorkerAliveError }] = await Promise.all([
        import('../jobs/handoff.js'),
        import('../registry/registry.js'),
        import('../jobs/errors.js'),
      ])
      try {
        const live = await new Registry(redis, config.redisPrefix).list('worker')
        if (!opts.force && live.some((e) => e.id === worker)) throw new WorkerAliveError(worker)
        const { handedOn } = await handOffJobs(redis, config, worker, types)
        const lines = Object.entries(handedOn).map(([type, ids]) => `  ${type}: ${ids.join(', ')}`)
        const count = Object.values(handedOn).flat().length
        process.stdout.write(
          `${count} active job${count === 1 ? '' : 's'} of ${worker} handed on${count ? `:\n${lines.join('\n')}` : ''}\n`,
        )
      } finally {
        redis.disconnect()
      }
    })
}
