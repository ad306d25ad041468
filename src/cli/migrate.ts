import type { Command } from 'commander'
import { withStackStores } from '../stack/stores.js'
import { type CliApp, requireApp } from './app.js'
import { addSettingOptions, configFromOptions } from './options.js'

/** `fleet migrate`: applies pending migrations (Fleet's, then the app's) once, under a lock, and exits. */
export function registerMigrate(program: Command, app: CliApp | undefined): void {
  addSettingOptions(
    program
      .command('migrate')
      .description(
        "Apply pending database migrations, Fleet's then the app's (safe to run from many processes at once).",
      ),
    'migrate',
    app?.app.settings,
  ).action(async (opts: Record<string, unknown>) => {
    const { app: fleetApp } = requireApp(app, 'migrate')
    const config = await withStackStores(configFromOptions('migrate', opts, { extra: fleetApp.settings }))
    const [{ migrate }, { createPool }, { createLogger }, { appMigrations }] = await Promise.all([
      import('../db/migrate.js'),
      import('../db/pool.js'),
      import('../log.js'),
      import('../app/manifest.js'),
    ])
    const logger = createLogger(config, { role: 'migrate' })
    const pool = createPool(config, { applicationName: 'fleet-migrate' })
    try {
      const result = await migrate(pool, config.dbSchema, { logger, migrations: appMigrations(fleetApp) })
      process.stdout.write(
        `migrations: ${result.applied.length} applied, ${result.skipped.length} already in place (app ${fleetApp.name}, schema ${config.dbSchema})\n`,
      )
    } finally {
      await pool.end()
    }
  })
}
