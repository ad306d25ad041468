/**
 * Setting definitions: every Fleet setting is one environment variable with a type, a unit, a default and a
 * line of documentation. Components declare theirs in `src/config/settings/*.ts`; `loadConfig` parses them
 * all in one place and `docs/configuration.md` is generated from the same declarations.
 */
import fs from 'node:fs'
import { checkRedisUrl } from '../redis/url.js'
import { ConfigError } from './errors.js'

/** One setting: its variable, flag, default and how its text is parsed and checked (made by `setting.*`). */
export interface SettingSpec<T> {
  /** Environment variable, e.g. `FLEET_PORT`. */
  readonly env: string
  /** What the setting does, one sentence. */
  readonly doc: string
  /** Unit or format shown in the docs and in `--help` (e.g. `ms`, `bytes`, `url`). */
  readonly unit: string
  /** Default as the user would write it in the environment; `undefined` means "unset" (optional setting). */
  readonly default: string | undefined
  /** Long CLI flag (without dashes) for the commands that accept it. */
  readonly flag?: string
  /** Commands that accept the flag (`up`, `web`, `lb`, ...). */
  readonly commands?: readonly string[]
  /** Another flag name for some commands (`{ up: 'lb-engine' }`: `fleet up --lb-engine`, `fleet lb --engine`). */
  readonly flagIn?: Readonly<Record<string, string>>
  /** True when the flag may be repeated (its values are joined with commas). */
  readonly repeatable?: boolean
  /** Turns the raw text into the typed value, throwing a plain Error with what is wrong. */
  readonly parse: (raw: string) => T
}

type Common = Pick<SettingSpec<unknown>, 'env' | 'doc' | 'flag' | 'commands' | 'repeatable'>

/** A spec whose type records whether a default was given, so the resolved config knows what may be unset. */
export type Spec<T, O> = SettingSpec<T> & {
  readonly hasDefault?: O extends { default: string | number | boolean } ? true : false
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }

/** Parses `250ms`, `30s`, `10m`, `2h`, `7d` or a bare number of milliseconds. */
export function parseDuration(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(raw)
  if (!m) throw new Error('expected a duration such as 500ms, 30s, 10m, 2h or a number of milliseconds')
  return Math.round(Number(m[1]) * DURATION_UNITS[(m[2] ?? 'ms').toLowerCase()])
}

/** Parses `512b`, `64kb`, `256mb`, `1gb` or a bare number of bytes. */
export function parseBytes(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(raw)
  if (!m) throw new Error('expected a size such as 512kb, 256mb, 1gb or a number of bytes')
  return Math.round(Number(m[1]) * BYTE_UNITS[(m[2] ?? 'b').toLowerCase()])
}

function parseInteger(raw: string, min: number, max: number): number {
  if (!/^\s*-?\d+\s*$/.test(raw)) throw new Error('expected a whole number')
  const n = Number(raw)
  if (n < min || n > max) throw new Error(`expected a number from ${min} to ${max}`)
  return n
}

function parseUrl(raw: string, protocols: readonly string[]): string {
  // A list of Sentinels is no WHATWG URL (`h1:26379,h2:26379`): src/redis/url.ts reads that form (and its
  // TLS twin, rediss+sentinel:).
  if (protocols.includes('redis+sentinel:') && /^rediss?(\+sentinel)?:/i.test(raw)) return checkRedisUrl(raw)
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new Error(`expected a URL such as ${protocols[0]}//host:port`)
  }
  if (!protocols.includes(u.protocol)) throw new Error(`expected a ${protocols.join(' or ')} URL`)
  return raw
}

/**
 * Declares a setting (Fleet's own and an app's alike): read from its environment variable or its flag,
 * parsed, checked at start, listed in `--help`.
 * @example export const mySettings = { pageSize: setting.int({ env: 'GUESTBOOK_PAGE_SIZE', doc: 'Entries per page.', default: 20, min: 1 }) }
 */
export const setting = {
  string<O extends Common & { default?: string; pattern?: RegExp; hint?: string }>(o: O): Spec<string, O> {
    return {
      ...o,
      unit: 'text',
      default: o.default,
      parse: (raw) => {
        if (o.pattern && !o.pattern.test(raw))
          throw new Error(o.hint ?? `expected text matching ${o.pattern}`)
        return raw
      },
    }
  },
  int<O extends Common & { default?: number; min?: number; max?: number; unit?: string }>(
    o: O,
  ): Spec<number, O> {
    const min = o.min ?? 0
    const max = o.max ?? Number.MAX_SAFE_INTEGER
    return {
      ...o,
      unit: o.unit ?? 'count',
      default: o.default === undefined ? undefined : String(o.default),
      parse: (raw) => parseInteger(raw, min, max),
    }
  },
  port<O extends Common & { default?: number }>(o: O): Spec<number, O> {
    return {
      ...o,
      unit: 'port',
      default: o.default === undefined ? undefined : String(o.default),
      parse: (raw) => parseInteger(raw, 0, 65535),
    }
  },
  /** A duration in milliseconds; written `30s`, `10m`, `500ms`... */
  duration<O extends Common & { default?: string; min?: string }>(o: O): Spec<number, O> {
    const min = o.min === undefined ? 0 : parseDuration(o.min)
    return {
      ...o,
      unit: 'duration',
      default: o.default,
      parse: (raw) => {
        const ms = parseDuration(raw)
        if (ms < min) throw new Error(`expected at least ${o.min}`)
        return ms
      },
    }
  },
  /**
   * A file read when the setting is parsed (at start): it must be readable and, when `contains` is given,
   * hold text matching it. The value is the path as given.
   */
  file<O extends Common & { contains?: RegExp; hint?: string }>(o: O): Spec<string, O> {
    return {
      ...o,
      unit: 'file',
      default: undefined,
      parse: (raw) => {
        let text: string
        try {
          text = fs.readFileSync(raw, 'utf8')
        } catch (err) {
          const e = err as NodeJS.ErrnoException
          throw new Error(`cannot read the file: ${e.code ?? e.message}`)
        }
        if (o.contains && !o.contains.test(text))
          throw new Error(o.hint ?? `expected a file matching ${o.contains}`)
        return raw
      },
    }
  },
  /** A size in bytes; written `256mb`, `64kb`... */
  bytes<O extends Common & { default?: string }>(o: O): Spec<number, O> {
    return { ...o, unit: 'bytes', default: o.default, parse: parseBytes }
  },
  bool<O extends Common & { default?: boolean }>(o: O): Spec<boolean, O> {
    return {
      ...o,
      unit: 'boolean',
      default: o.default === undefined ? undefined : String(o.default),
      parse: (raw) => {
        const v = raw.trim().toLowerCase()
        if (['1', 'true', 'yes', 'on'].includes(v)) return true
        if (['0', 'false', 'no', 'off'].includes(v)) return false
        throw new Error('expected true or false')
      },
    }
  },
  url<O extends Common & { default?: string; protocols: readonly string[] }>(o: O): Spec<string, O> {
    return { ...o, unit: 'url', default: o.default, parse: (raw) => parseUrl(raw, o.protocols) }
  },
  /** A comma-separated list of URLs (a repeatable flag adds one each time). */
  urls<O extends Common & { default?: string; protocols: readonly string[] }>(o: O): Spec<string[], O> {
    return {
      ...o,
      unit: 'url list',
      default: o.default,
      parse: (raw) =>
        raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .map((s) => parseUrl(s, o.protocols)),
    }
  },
  oneOf<
    const V extends string,
    O extends Common & { default?: V; values: readonly V[] } = Common & { default?: V; values: readonly V[] },
  >(o: O & { values: readonly V[] }): Spec<V, O> {
    return {
      ...o,
      unit: o.values.join(' | '),
      default: o.default,
      parse: (raw) => {
        if (!(o.values as readonly string[]).includes(raw))
          throw new Error(`expected one of ${o.values.join(', ')}`)
        return raw as V
      },
    }
  },
}

/** Parses one setting from its raw text, wrapping a parse failure in a ConfigError that names it. */
export function parseSetting<T>(spec: SettingSpec<T>, raw: string, source: string): T {
  try {
    return spec.parse(raw)
  } catch (err) {
    throw new ConfigError(spec.env, raw, (err as Error).message, source, { cause: err })
  }
}

/** The flag name (without dashes) of `spec` on `command`. */
export function flagOf(spec: SettingSpec<unknown>, command: string): string | undefined {
  return spec.flagIn?.[command] ?? spec.flag
}
