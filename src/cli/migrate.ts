import type { Command } from 'commander'
import { addSettingOptions, configFromOptions } from './options.js'

/** `fleet migrate`: applies pending migrations once, under a lock, and exits. */
export function registerMigrate(program: Command): void {
  addSettingOptions(
    program
      .command('migrate')
      .description('Apply pending database migrations (safe to run from many processes at once).'),
    'migrate',
  ).action(async (opts: Record<string, unknown>) => {
    const config = configFromOptions('migrate', opts)
    const [{ migrate }, { createPool }, { createLogger }] = await Promise.all([
      import('../db/migrate.js'),
      import('../db/pool.js'),
      import('../log.js'),
    ])
    const logger = createLogger(config, { role: 'migrate' })
    const pool = createPool(config, { applicationName: 'fleet-migrate' })
    try {
      const result = await migrate(pool, config.dbSchema, { logger })
      process.stdout.write(
        `migrations: ${result.applied.length} applied, ${result.skipped.length} already in place (schema ${config.dbSchema})\n`,
      )
    } finally {
      await pool.end()
    }
  })
}
