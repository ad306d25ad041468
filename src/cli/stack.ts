/**
 * `fleet up` (the local stack, supervised), `fleet status` and `fleet restart` (which talk to a running
 * `fleet up` through its control socket, `<data dir>/fleet.sock`).
 */
import path from 'node:path'
import type { Command } from 'commander'
import { requestRestart, requestStatus } from '../stack/control.js'
import { renderReport } from '../stack/status.js'
import { type CliApp, requireApp } from './app.js'
import { addSettingOptions, configFromOptions } from './options.js'

function socketOf(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'fleet.sock')
}

export function registerStack(program: Command, app: CliApp | undefined): void {
  addSettingOptions(
    program
      .command('up')
      .description(
        'Start the whole stack of the app: PostgreSQL, Redis (store and cache), the load balancer, web servers and workers; supervise them; Ctrl-C stops it in order.',
      ),
    'up',
    app?.app.settings,
  ).action(async (opts: Record<string, unknown>) => {
    const { app: fleetApp, location } = requireApp(app, 'up')
    const config = configFromOptions('up', opts, { extra: fleetApp.settings })
    // Loaded here: `fleet status` and `fleet restart` need none of the database and Redis code.
    const { runUp } = await import('../stack/run-up.js')
    const code = await runUp(config, { app: fleetApp, url: location.url })
    process.exit(code)
  })

  addSettingOptions(
    program
      .command('status')
      .description(
        'Show the processes of the running `fleet up` (role, pid, port, state, restarts, uptime, memory).',
      )
      .option('--json', 'print the status as JSON'),
    'status',
  ).action(async (opts: Record<string, unknown>) => {
    const config = configFromOptions('status', opts)
    const report = await requestStatus(socketOf(config.dataDir))
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report)}\n`)
  })

  addSettingOptions(
    program
      .command('restart')
      .argument('<target>', 'a role (web, worker, lb) or one process name (web-2)')
      .description(
        'Rolling restart in the running `fleet up`: one process at a time, each drained, started again and ready before the next.',
      ),
    'restart',
  ).action(async (target: string, opts: Record<string, unknown>) => {
    const config = configFromOptions('restart', opts)
    const last = await requestRestart(socketOf(config.dataDir), target, (p) => {
      process.stdout.write(`${p.message}\n`)
    })
    if (last.event !== 'done') process.exit(1)
  })
}
