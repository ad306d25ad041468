#!/usr/bin/env node
/**
 * A light entry point for the load balancer alone: the same command and flags as `fleet lb`, without
 * loading the other commands (web framework, queues, SQL parser), so the process stays small.
 * `node dist/cli/lb-main.js --port 8080 --upstream http://127.0.0.1:9001`
 */
import { Command } from 'commander'
import { exitWith } from './exit.js'
import { registerLb } from './lb.js'

const program = new Command('fleet').exitOverride()
registerLb(program)
try {
  await program.parseAsync(['lb', ...process.argv.slice(2)], { from: 'user' })
} catch (err) {
  exitWith('fleet lb', err)
}
