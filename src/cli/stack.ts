/**
 * `fleet up` (the local stack, supervised), `fleet status` and `fleet restart` (which talk to a running
 * `fleet up` through its control socket, `<data dir>/fleet.sock`).
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Command } from 'commander'
import { loadConfig } from '../config/index.js'
import { requestRestart, requestStatus } from '../stack/control.js'
import { renderReport } from '../stack/status.js'
import { type CliApp, requireApp } from './app.js'
import { addSettingOptions, configFromOptions } from './options.js'

/** What `fleet dev` changes from `fleet up`'s defaults: fewer processes, no waits around a restart. */
export const DEV_DEFAULTS: Readonly<Record<string, string>> = {
  FLEET_WEB: '1',
  FLEET_WORKERS: '1',
  FLEET_DRAIN_DELAY: '0ms',
  FLEET_LB_SLOW_START: '0ms',
  // The web server is away for a moment at each reload: not a fault to eject it for, and back in a fifth
  // of a second.
  FLEET_LB_EJECT_FAILURES: '0',
  FLEET_LB_HEALTH_INTERVAL: '200ms',
}

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
  ).action((opts: Record<string, unknown>) => runStack(app, 'up', opts))

  addSettingOptions(
    program
      .command('dev')
      .description(
        "`fleet up` for development: one web server and one worker by default, no drain delay or slow start; saving a source file in the app's folder reloads the web servers and workers (the stores keep running).",
      ),
    'up',
    app?.app.settings,
  ).action((opts: Record<string, unknown>) => runStack(app, 'dev', opts))

  addSettingOptions(
    program
      .command('status')
      .description(
        'Show the processes of the running `fleet up` (role, pid, port, state, restarts, uptime, memory); ' +
          'with --fleet (or --redis-url / REDIS_URL and no `fleet up` here), every load balancer, web server and ' +
          'worker in the registry of the store Redis, on any host: address, state, health, age.',
      )
      .option('--json', 'print the status as JSON')
      .option('--fleet', 'read the whole fleet from the registry (works without `fleet up`)')
      .option('--redis-url <url>', 'The store Redis whose registry to read [REDIS_URL]')
      .option('--redis-prefix <text>', 'Key prefix [FLEET_REDIS_PREFIX] (default: fleet:)'),
    'status',
  ).action(async (opts: Record<string, unknown>) => {
    const config = configFromOptions('status', opts)
    const socket = socketOf(config.dataDir)
    const flags: Record<string, string> = { dataDir: config.dataDir }
    for (const k of ['redisUrl', 'redisPrefix'] as const) if (typeof opts[k] === 'string') flags[k] = opts[k]
    const fleet = loadConfig({ flags })
    if (opts.fleet || (fleet.redisUrl && !existsSync(socket))) {
      const { statusFromRegistry } = await import('./fleet-status.js')
      process.stdout.write(`${await statusFromRegistry(fleet, opts.json === true)}\n`)
      return
    }
    const report = await requestStatus(socket)
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

/** `fleet up`, or `fleet dev` (its defaults, and a watch on the app's folder); exits with the stack's code. */
async function runStack(app: CliApp | undefined, command: 'up' | 'dev', opts: Record<string, unknown>) {
  const { app: fleetApp, location } = requireApp(app, command)
  // fleet dev: defaults for a quick reload; a flag or a variable that is set still wins.
  if (command === 'dev') for (const [name, value] of Object.entries(DEV_DEFAULTS)) process.env[name] ??= value
  const config = configFromOptions('up', opts, { extra: fleetApp.settings })
  // Loaded here: `fleet status` and `fleet restart` need none of the database and Redis code.
  const { runUp } = await import('../stack/run-up.js')
  const watch = command === 'dev' ? { watch: path.dirname(fileURLToPath(location.url)) } : {}
  process.exit(await runUp(config, { app: fleetApp, url: location.url }, watch))
}
