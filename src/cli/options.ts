/**
 * Turns setting declarations into commander options: a command accepts, as flags, the settings whose
 * `commands` name it. `--help` shows each flag with its environment variable, unit and default.
 */
import type { Command } from 'commander'
import type { SettingSpec } from '../config/define.js'
import { type Config, type LoadOptions, loadConfig, settings } from '../config/index.js'

type SettingKey = keyof typeof settings

/** The settings a command accepts as flags. */
export function settingsFor(command: string): [SettingKey, SettingSpec<unknown>][] {
  return (Object.entries(settings) as [SettingKey, SettingSpec<unknown>][]).filter(
    ([, spec]) => spec.flag && spec.commands?.includes(command),
  )
}

/** Adds one option per setting the command accepts. */
export function addSettingOptions(cmd: Command, command: string): Command {
  for (const [, spec] of settingsFor(command)) {
    const isBool = spec.unit === 'boolean'
    const flag = isBool
      ? `--${spec.flag} [${spec.unit}]`
      : `--${spec.flag} <${spec.unit.replace(/ \| /g, '|')}>`
    const dflt = spec.default === undefined ? '' : ` (default: ${spec.default})`
    const help = `${spec.doc} [${spec.env}]${dflt}`
    if (spec.repeatable) {
      cmd.option(flag, help, (value: string, prev: string[] | undefined) => [...(prev ?? []), value])
    } else {
      cmd.option(flag, help)
    }
  }
  return cmd
}

/** Resolves the config of a command from the environment and the flags it was given. */
export function configFromOptions(
  command: string,
  opts: Record<string, unknown>,
  extra: Omit<LoadOptions, 'flags'> = {},
): Config {
  const flags: Partial<Record<SettingKey, string>> = {}
  for (const [key, spec] of settingsFor(command)) {
    const name = spec.flag!.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
    const v = opts[name]
    if (v === undefined) continue
    flags[key] = Array.isArray(v) ? v.join(',') : v === true ? 'true' : String(v)
  }
  return loadConfig({ ...extra, flags })
}
