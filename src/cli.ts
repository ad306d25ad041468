#!/usr/bin/env node
/**
 * `fleet <command>`: one CLI for every Fleet process. Each command lives in `src/cli/<command>.ts` and
 * registers itself on the program; settings come from the environment and from the flags each accepts.
 */
import { readFileSync } from 'node:fs'
import { Command } from 'commander'
import { cliApp } from './cli/app.js'
import { registerCache } from './cli/cache.js'
import { exitWith } from './cli/exit.js'
import { registerInit } from './cli/init.js'
import { registerJobs } from './cli/jobs.js'
import { registerLb } from './cli/lb.js'
import { registerMigrate } from './cli/migrate.js'
import { registerSeed } from './cli/seed.js'
import { registerStack } from './cli/stack.js'
import { registerWeb } from './cli/web.js'
import { registerWorker } from './cli/worker.js'
import { unknownSettingWarnings } from './config/unknown.js'

/** Variables of Fleet's own test suite (test/support/global-setup.ts), not settings of a process. */
const TEST_VARIABLES = ['FLEET_TEST_DATABASE_URL', 'FLEET_TEST_REDIS_URL']

/** This Fleet's version, from its package.json. */
function fleetVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

try {
  // The app of the command (up, web, worker, migrate, seed, jobs): its settings are flags of the command.
  const app = await cliApp(process.argv)
  // Commands that run an app know every setting there is (Fleet's and the app's): a FLEET_* variable that is
  // none of them is a typo.
  if (app)
    for (const warning of unknownSettingWarnings(process.env, app.app.settings, TEST_VARIABLES))
      process.stderr.write(`fleet: warning: ${warning}\n`)
  const program = new Command('fleet')
    .description(
      'Fleet: a load balancer, stateless web servers, PostgreSQL, Redis and job workers, as one stack.',
    )
    .version(fleetVersion(), '-V, --version', 'print the version of Fleet')
    .showHelpAfterError()
    .exitOverride()
  registerInit(program)
  registerStack(program, app) // up, status, restart
  registerLb(program)
  registerWeb(program, app)
  registerWorker(program, app)
  registerMigrate(program, app)
  registerSeed(program, app)
  registerCache(program)
  registerJobs(program, app)
  await program.parseAsync(process.argv)
} catch (err) {
  exitWith('fleet', err)
}
