import type { Command } from 'commander'
import { addSettingOptions, configFromOptions } from './options.js'

/** `fleet web`: one stateless web server; it announces itself in the registry for load balancers. */
export function registerWeb(program: Command): void {
  addSettingOptions(
    program
      .command('web')
      .description(
        'Run one web server (Fastify). Needs DATABASE_URL and REDIS_URL; stops gracefully on SIGTERM.',
      ),
    'web',
  ).action(async (opts: Record<string, unknown>) => {
    const config = configFromOptions('web', opts)
    // Loaded here, not at the top, so other commands do not pay for the application's code.
    const [{ appBeforeListen, appRoutes }, { exitOnSignals, startWebServer }] = await Promise.all([
      import('../app.js'),
      import('../web/main.js'),
    ])
    const server = await startWebServer(config, { routes: appRoutes, beforeListen: appBeforeListen })
    exitOnSignals(server.stop, config, server.deps.logger)
  })
}
