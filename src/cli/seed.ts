import type { Command } from 'commander'
import { withStackStores } from '../stack/stores.js'
import { type CliApp, requireApp } from './app.js'
import { addSettingOptions, configFromOptions } from './options.js'

/** `fleet seed`: runs the app's seed (migrating first), with a progress bar on a TTY. */
export function registerSeed(program: Command, app: CliApp | undefined): void {
  addSettingOptions(
    program
      .command('seed')
      .description(
        "Load the app's seed data (the default app: a deterministic demo catalog) into an empty database.",
      )
      .option('--reset', "delete what the app's seed made first, then seed again")
      .option('--if-empty', 'do nothing when the app reports its data already there (exit 0)'),
    'seed',
    app?.app.settings,
  ).action(async (opts: Record<string, unknown>) => {
    const { app: fleetApp } = requireApp(app, 'seed')
    const config = await withStackStores(configFromOptions('seed', opts, { extra: fleetApp.settings }))
    const [{ SingleBar }, { Database }, { migrate }, { createPool }, { createLogger }, runtime, errors] =
      await Promise.all([
        import('cli-progress'),
        import('../db/database.js'),
        import('../db/migrate.js'),
        import('../db/pool.js'),
        import('../log.js'),
        import('../app/manifest.js'),
        import('../app/errors.js'),
      ])
    const seed = fleetApp.seed
    if (!seed) throw new errors.AppHasNoSeedError(fleetApp.name)
    const logger = createLogger(config, { role: 'seed' })
    const db = new Database(createPool(config, { applicationName: 'fleet-seed' }))
    const out = process.stdout
    try {
      await migrate(db.pool, config.dbSchema, { logger, migrations: runtime.appMigrations(fleetApp) })
      if (opts.reset) {
        if (!seed.reset)
          throw new errors.AppHasNoSeedError(
            fleetApp.name,
            'no seed.reset, so --reset cannot be used: add seed.reset(db), or seed without --reset',
          )
        await seed.reset(db)
      } else if (opts.ifEmpty && !(await seed.isEmpty(db))) {
        out.write(`app ${fleetApp.name} already has its data; nothing to do\n`)
        return
      }
      const bar = out.isTTY
        ? new SingleBar({
            format: 'seeding {phase} [{bar}] {percentage}% | {value}/{total} rows | {duration}s',
            hideCursor: true,
          })
        : undefined
      let lastPhase = ''
      const summary = await seed.run(db, config, (done, total, phase) => {
        if (bar) {
          if (lastPhase === '') bar.start(total, 0, { phase })
          bar.setTotal(total)
          bar.update(done, { phase: phase.padEnd(10) })
        } else if (phase !== lastPhase) {
          out.write(`seeding ${phase}...\n`)
        }
        lastPhase = phase
      })
      bar?.stop()
      out.write(`${summary} (schema ${config.dbSchema})\n`)
    } finally {
      await db.pool.end()
    }
  })
}
