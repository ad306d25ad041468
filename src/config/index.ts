/**
 * The one place where Fleet reads its settings. `loadConfig()` parses every declared setting from the
 * environment (and CLI flags, which win), validates it, fills defaults and returns a frozen object.
 */

import { randomBytes } from 'node:crypto'
import os from 'node:os'
import { parseSetting, type SettingSpec } from './define.js'
import { RemovedSettingError } from './errors.js'
import { cacheSettings } from './settings/cache.js'
import { coreSettings } from './settings/core.js'
import { dashboardSettings } from './settings/dashboard.js'
import { jobsSettings } from './settings/jobs.js'
import { lbSettings } from './settings/lb.js'
import { registrySettings } from './settings/registry.js'
import { stackSettings } from './settings/stack.js'
import { webSettings } from './settings/web.js'

/** Every setting, grouped by the component that owns it (the grouping is the docs' sections). */
export const settingGroups = {
  core: coreSettings,
  registry: registrySettings,
  web: webSettings,
  lb: lbSettings,
  stack: stackSettings,
  cache: cacheSettings,
  jobs: jobsSettings,
  dashboard: dashboardSettings,
} as const

export const settings = Object.freeze(
  Object.assign({}, ...Object.values(settingGroups)),
) as typeof coreSettings &
  typeof registrySettings &
  typeof webSettings &
  typeof lbSettings &
  typeof stackSettings &
  typeof cacheSettings &
  typeof jobsSettings &
  typeof dashboardSettings

type Settings = typeof settings
type ValueOf<S> = S extends SettingSpec<infer T> ? T : never
type HasDefault<S> = S extends { hasDefault?: true } ? true : false

/** Declared settings by key (Fleet's own, or an application's). */
export type SettingSpecs = Readonly<Record<string, SettingSpec<unknown>>>

/** The resolved values of declared settings: one with a default is always set; one without may be undefined. */
export type SettingsOf<S> = Readonly<{
  [K in keyof S]: HasDefault<S[K]> extends true ? ValueOf<S[K]> : ValueOf<S[K]> | undefined
}>

/** The resolved configuration of Fleet's own settings (an application's are in the same object). */
export type Config = SettingsOf<Settings>

/** Settings that Fleet used to read, with what to use instead. Giving one fails loudly. */
const removed: Record<string, string> = {
  FLEET_LB_RETRY_BUFFER_SIZE:
    'use FLEET_LB_REQUEST_BUFFER_SIZE (bodies up to it are read whole before an upstream is picked, and a safe retry resends them)',
}

export interface LoadOptions {
  /** Environment to read (default: process.env). */
  env?: NodeJS.ProcessEnv
  /** Values from CLI flags, keyed by setting name; they win over the environment. */
  flags?: Partial<Record<string, string>>
  /** Values that replace defaults (not the environment): used by `fleet up` and tests. */
  defaults?: Partial<Record<string, string>>
  /** An application's own settings, resolved into the same object (`appSettings()` reads them back). */
  extra?: SettingSpecs
}

/**
 * Parses and validates every setting. Throws ConfigError naming the setting and the bad value.
 * @example const config = loadConfig({ env: { ...process.env, FLEET_PORT: '0' } })
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env
  for (const [name, replacement] of Object.entries(removed)) {
    if (env[name] !== undefined) throw new RemovedSettingError(name, replacement)
  }
  const out: Record<string, unknown> = {}
  for (const [key, spec] of settingEntries(options.extra)) {
    const flag = options.flags?.[key]
    const fromEnv = env[spec.env]
    let raw: string | undefined
    let source: string
    if (flag !== undefined) {
      raw = flag
      source = `--${spec.flag ?? key}`
    } else if (fromEnv !== undefined && fromEnv !== '') {
      raw = fromEnv
      source = 'environment'
    } else {
      raw = options.defaults?.[key] ?? spec.default
      source = 'default'
    }
    out[key] = raw === undefined ? undefined : parseSetting(spec, raw, source)
  }
  return Object.freeze(out) as Config
}

/** A readable, unique id for a process of `role`: `web-host-1234-a1b2`. */
export function makeInstanceId(role: string, config: Config): string {
  return config.instanceId ?? `${role}-${os.hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`
}

/** Fleet's settings, then `extra` (an application's), as [key, spec] pairs. */
export function settingEntries(extra: SettingSpecs | undefined): [string, SettingSpec<unknown>][] {
  return [...Object.entries(settings), ...Object.entries(extra ?? {})] as [string, SettingSpec<unknown>][]
}

/** The settings (Fleet's and `extra`) as environment variables, for handing the config to a child process. */
export function configToEnv(config: Config, extra?: SettingSpecs): Record<string, string> {
  const out: Record<string, string> = {}
  const values = config as Readonly<Record<string, unknown>>
  for (const [key, spec] of settingEntries(extra)) {
    const v = values[key]
    if (v === undefined) continue
    out[spec.env] = Array.isArray(v) ? v.join(',') : String(v)
  }
  return out
}
