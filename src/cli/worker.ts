import type { Command } from 'commander'
import { addSettingOptions, configFromOptions } from './options.js'

/** `fleet worker`: runs queued jobs; announces itself in the registry; stops gracefully on SIGTERM. */
export function registerWorker(program: Command): void {
  addSettingOptions(
    program
      .command('worker')
      .description(
        'Run one job worker (BullMQ). Needs DATABASE_URL and REDIS_URL; on SIGTERM it stops taking jobs, ' +
          'finishes or hands back the active ones within FLEET_SHUTDOWN_TIMEOUT, and exits.',
      ),
    'worker',
  ).action(async (opts: Record<string, unknown>) => {
    const config = configFromOptions('worker', opts)
    // Loaded here, not at the top, so other commands do not pay for the jobs' and the shop's code.
    const [
      { builtinJobTypes, loadJobModules, selectJobTypes },
      { startWorker },
      { exitOnSignals },
      { shopJobTypes },
      { installProductPageWarmer },
    ] = await Promise.all([
      import('../jobs/catalog.js'),
      import('../jobs/worker-process.js'),
      import('../web/main.js'),
      import('./worker-types.js'),
      import('../shop/page-warmer.js'),
    ])
    const types = selectJobTypes(
      [builtinJobTypes, shopJobTypes, await loadJobModules(config.jobModules)],
      config.jobQueues,
    )
    const worker = await startWorker(config, types, {
      // The recommendations job assembles the product pages into the object cache after each run.
      beforeStart: async (deps) => installProductPageWarmer(deps.cache),
      afterStop: async () => installProductPageWarmer(undefined),
    })
    exitOnSignals(worker.stop, config, worker.deps.logger)
  })
}
