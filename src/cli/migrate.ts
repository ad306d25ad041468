import type { Command } from 'commander'
import { migrate } from '../db/migrate.js'
import { createPool } from '../db/pool.js'
import { createLogger } from '../log.js'
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
