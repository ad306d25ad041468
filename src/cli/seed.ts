import type { Command } from 'commander'
import { addSettingOptions, configFromOptions } from './options.js'

/** `fleet seed`: loads the deterministic catalog (migrating first), with a progress bar on a TTY. */
export function registerSeed(program: Command): void {
  addSettingOptions(
    program
      .command('seed')
      .description(
        'Load the deterministic demo catalog (categories, products, reviews) into an empty database.',
      )
      .option('--reset', 'delete the catalog (and the seed users) first, then seed again')
      .option('--if-empty', 'do nothing when the catalog already has products (exit 0)'),
    'seed',
  ).action(async (opts: Record<string, unknown>) => {
    const config = configFromOptions('seed', opts)
    const [{ SingleBar }, { Database }, { migrate }, { createPool }, { createLogger }, seed] =
      await Promise.all([
        import('cli-progress'),
        import('../db/database.js'),
        import('../db/migrate.js'),
        import('../db/pool.js'),
        import('../log.js'),
        import('../shop/seed.js'),
      ])
    const { catalogIsEmpty, resetCatalog, seedCatalog } = seed
    const logger = createLogger(config, { role: 'seed' })
    const db = new Database(createPool(config, { applicationName: 'fleet-seed' }))
    const out = process.stdout
    try {
      await migrate(db.pool, config.dbSchema, { logger })
      if (opts.reset) await resetCatalog(db)
      else if (opts.ifEmpty && !(await catalogIsEmpty(db))) {
        out.write('catalog already seeded; nothing to do\n')
        return
      }
      const bar = out.isTTY
        ? new SingleBar({
            format: 'seeding {phase} [{bar}] {percentage}% | {value}/{total} rows | {duration}s',
            hideCursor: true,
          })
        : undefined
      let lastPhase = ''
      const result = await seedCatalog(db, {
        products: config.seedProducts,
        reviews: config.seedReviews,
        onProgress: (done, total, phase) => {
          if (bar) {
            if (lastPhase === '') bar.start(total, 0, { phase })
            bar.update(done, { phase: phase.padEnd(10) })
          } else if (phase !== lastPhase) {
            out.write(`seeding ${phase}...\n`)
          }
          lastPhase = phase
        },
      })
      bar?.stop()
      out.write(
        `seeded ${result.categories} categories, ${result.products} products, ${result.reviews} reviews ` +
          `(${result.users} reviewers) in ${(result.ms / 1000).toFixed(1)} s (schema ${config.dbSchema})\n`,
      )
    } finally {
      await db.pool.end()
    }
  })
}
