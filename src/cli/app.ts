/**
 * The application of the commands that run one (`up`, `dev`, `web`, `worker`, `migrate`, `seed`, `jobs`): found
 * before the commands are declared, so that its settings are flags of those commands too.
 */
import type { FleetApp } from '../app/define.js'
import type { AppLocation } from '../app/load.js'

/** Commands that run the application (and accept `--app`). */
export const APP_COMMANDS = new Set(['up', 'dev', 'web', 'worker', 'migrate', 'seed', 'jobs'])

/** The application a command runs, where it was found, and its settings. */
export interface CliApp {
  app: FleetApp
  location: AppLocation
}

/** The value of `--app X` / `--app=X` in `argv`, else FLEET_APP. */
export function appSpecOf(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--app') return argv[i + 1]
    if (argv[i].startsWith('--app=')) return argv[i].slice('--app='.length)
  }
  return env.FLEET_APP || undefined
}

/** Loads the app of `argv`'s command, or undefined when the command runs none. */
export async function cliApp(argv: readonly string[]): Promise<CliApp | undefined> {
  if (!APP_COMMANDS.has(argv[2] ?? '')) return undefined
  const { loadApp } = await import('../app/load.js')
  return loadApp(appSpecOf(argv))
}

/** The app of `command`, which runs one: `cliApp` loaded it before the commands were declared. */
export function requireApp(app: CliApp | undefined, command: string): CliApp {
  if (!app) throw new Error(`fleet ${command}: no app was loaded`)
  return app
}
