import type { Command } from 'commander'
import { builtinJobTypes, loadJobModules, selectJobTypes } from '../jobs/catalog.js'
import { startWorker } from '../jobs/worker-process.js'
import { exitOnSignals } from '../web/main.js'
import { addSettingOptions, configFromOptions } from './options.js'
import { shopJobTypes } from './worker-types.js'

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
    const types = selectJobTypes(
      [builtinJobTypes, shopJobTypes, await loadJobModules(config.jobModules)],
      config.jobQueues,
    )
    const worker = await startWorker(config, types)
    exitOnSignals(worker.stop, config, worker.deps.logger)
  })
}
