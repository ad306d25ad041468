import type { Command } from 'commander'
import { type CliApp, requireApp } from './app.js'
import { addSettingOptions, configFromOptions } from './options.js'

/** `fleet web`: one stateless web server of the app; it announces itself in the registry for load balancers. */
export function registerWeb(program: Command, app: CliApp | undefined): void {
  addSettingOptions(
    program
      .command('web')
      .description(
        'Run one web server (Fastify) of the app. Needs DATABASE_URL and REDIS_URL; stops gracefully on SIGTERM.',
      ),
    'web',
    app?.app.settings,
  ).action(async (opts: Record<string, unknown>) => {
    const { app: fleetApp } = requireApp(app, 'web')
    const config = configFromOptions('web', opts, { extra: fleetApp.settings })
    // Loaded here, not at the top, so other commands do not pay for the web runtime's code.
    const [{ startAppWebServer }, { exitOnSignals }] = await Promise.all([
      import('../app/runtime.js'),
      import('../process/exit.js'),
    ])
    const server = await startAppWebServer(fleetApp, config)
    exitOnSignals(server.stop, config, server.deps.logger)
  })
}
