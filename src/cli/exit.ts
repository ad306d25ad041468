/** How a `fleet` command ends on an error: one mapping from error to exit code, for every entry point. */
import { CommanderError } from 'commander'
import { isFleetError } from '../errors.js'

/**
 * The exit code for `err`: commander's own (usage, --help), 2 for a setting to fix (FLEET_E_CONFIG_*:
 * invalid, removed, missing; as a usage error), 1 for any other failure.
 */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode
  if (isFleetError(err) && err.code.startsWith('FLEET_E_CONFIG_')) return 2
  return 1
}

/**
 * Writes what went wrong (an expected failure as `<prefix>: message [CODE]`, anything else with its stack;
 * commander has printed its own) and exits with `exitCodeOf(err)`.
 */
export function exitWith(prefix: string, err: unknown): never {
  if (!(err instanceof CommanderError)) {
    const text = isFleetError(err) ? `${err.message} [${err.code}]` : ((err as Error).stack ?? String(err))
    process.stderr.write(`${prefix}: ${text}\n`)
  }
  process.exit(exitCodeOf(err))
}
