import type { Command } from 'commander'
import { appBeforeListen, appRoutes } from '../app.js'
import { exitOnSignals, startWebServer } from '../web/main.js'
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
    const server = await startWebServer(config, { routes: appRoutes, beforeListen: appBeforeListen })
    exitOnSignals(server.stop, config, server.deps.logger)
  })
}
