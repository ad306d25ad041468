#!/usr/bin/env node
/**
 * `fleet <command>`: one CLI for every Fleet process. Each command lives in `src/cli/<command>.ts` and
 * registers itself on the program; settings come from the environment and from the flags each accepts.
 */
import { Command, CommanderError } from 'commander'
import { cliApp } from './cli/app.js'
import { registerCache } from './cli/cache.js'
import { registerJobs } from './cli/jobs.js'
import { registerLb } from './cli/lb.js'
import { registerMigrate } from './cli/migrate.js'
import { registerSeed } from './cli/seed.js'
import { registerStack } from './cli/stack.js'
import { registerWeb } from './cli/web.js'
import { registerWorker } from './cli/worker.js'
import { isFleetError } from './errors.js'

try {
  // The app of the command (up, web, worker, migrate, seed, jobs): its settings are flags of the command.
  const app = await cliApp(process.argv)
  const program = new Command('fleet')
    .description(
      'Fleet: a load balancer, stateless web servers, PostgreSQL, Redis and job workers, as one stack.',
    )
    .showHelpAfterError()
    .exitOverride()
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
  if (err instanceof CommanderError) process.exit(err.exitCode)
  if (isFleetError(err)) {
    process.stderr.write(`fleet: ${err.message} [${err.code}]\n`)
    // A setting to fix (invalid, removed, missing): exit 2, as a usage error.
    process.exit(err.code.startsWith('FLEET_E_CONFIG_') ? 2 : 1)
  }
  process.stderr.write(`fleet: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
}
