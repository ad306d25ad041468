/**
 * Turns setting declarations into commander options: a command accepts, as flags, the settings whose
 * `commands` name it. `--help` shows each flag with its environment variable, unit and default.
 */
import type { Command } from 'commander'
import { flagOf, type SettingSpec } from '../config/define.js'
import {
  type Config,
  type LoadOptions,
  loadConfig,
  type SettingSpecs,
  settingEntries,
} from '../config/index.js'

/** The settings (Fleet's, then `extra`: the app's) a command accepts as flags. */
export function settingsFor(command: string, extra?: SettingSpecs): [string, SettingSpec<unknown>][] {
  return settingEntries(extra).filter(([, spec]) => spec.flag && spec.commands?.includes(command))
}

/** Adds one option per setting the command accepts (Fleet's and, given, the app's). */
export function addSettingOptions(cmd: Command, command: string, extra?: SettingSpecs): Command {
  for (const [, spec] of settingsFor(command, extra)) {
    const isBool = spec.unit === 'boolean'
    // A long list of values would widen the flag column past what commander can wrap beside it (lines of
    // 230 characters): such a flag shows `<value>`, and its help the values.
    const values = spec.unit.includes(' | ') && spec.unit.length > 16 ? spec.unit.split(' | ') : undefined
    const flag = isBool
      ? `--${flagOf(spec, command)} [${spec.unit}]`
      : `--${flagOf(spec, command)} <${values ? 'value' : spec.unit.replace(/ \| /g, '|')}>`
    const dflt = spec.default === undefined ? '' : ` (default: ${spec.default})`
    const help = `${spec.doc}${values ? ` One of: ${values.join(', ')}.` : ''} [${spec.env}]${dflt}`
    if (spec.repeatable) {
      cmd.option(flag, help, (value: string, prev: string[] | undefined) => [...(prev ?? []), value])
    } else {
      cmd.option(flag, help)
    }
  }
  return cmd
}

/** Resolves the config of a command (Fleet's settings and `options.extra`) from the environment and its flags. */
export function configFromOptions(
  command: string,
  opts: Record<string, unknown>,
  options: Omit<LoadOptions, 'flags'> = {},
): Config {
  const flags: Partial<Record<string, string>> = {}
  for (const [key, spec] of settingsFor(command, options.extra)) {
    const name = flagOf(spec, command)!.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
    const v = opts[name]
    if (v === undefined) continue
    flags[key] = Array.isArray(v) ? v.join(',') : v === true ? 'true' : String(v)
  }
  return loadConfig({ ...options, flags })
}
