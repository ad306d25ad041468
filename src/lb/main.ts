#!/usr/bin/env node
/**
 * A light entry point for the load balancer alone: the same command and flags as `fleet lb`, without
 * loading the other commands (web framework, queues, SQL parser), so the process stays small.
 * `node dist/lb/main.js --port 8080 --upstream http://127.0.0.1:9001`
 */
import { Command, CommanderError } from 'commander'
import { registerLb } from '../cli/lb.js'
import { isFleetError } from '../errors.js'

const program = new Command('fleet').exitOverride()
registerLb(program)
try {
  await program.parseAsync(['lb', ...process.argv.slice(2)], { from: 'user' })
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode)
  if (isFleetError(err)) {
    process.stderr.write(`fleet lb: ${err.message} [${err.code}]\n`)
    process.exit(err.code === 'FLEET_E_CONFIG_INVALID' || err.code === 'FLEET_E_CONFIG_REMOVED' ? 2 : 1)
  }
  process.stderr.write(`fleet lb: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
}
