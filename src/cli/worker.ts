import type { Command } from 'commander'
import { type CliApp, requireApp } from './app.js'
import { addSettingOptions, configFromOptions } from './options.js'

/** `fleet worker`: runs the app's queued jobs; announces itself in the registry; stops gracefully on SIGTERM. */
export function registerWorker(program: Command, app: CliApp | undefined): void {
  addSettingOptions(
    program
      .command('worker')
      .description(
        "Run one job worker (BullMQ) of the app's job types. Needs DATABASE_URL and REDIS_URL; on SIGTERM it " +
          'stops taking jobs, finishes or hands back the active ones within FLEET_SHUTDOWN_TIMEOUT, and exits.',
      ),
    'worker',
    app?.app.settings,
  ).action(async (opts: Record<string, unknown>) => {
    const { app: fleetApp } = requireApp(app, 'worker')
    const config = configFromOptions('worker', opts, { extra: fleetApp.settings })
    // Loaded here, not at the top, so other commands do not pay for the jobs' code.
    const [{ startAppWorker }, { exitOnSignals }] = await Promise.all([
      import('../app/runtime.js'),
      import('../process/exit.js'),
    ])
    const worker = await startAppWorker(fleetApp, config)
    exitOnSignals(worker.stop, config, worker.deps.logger)
  })
}
