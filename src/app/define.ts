/**
 * An application on Fleet, declared once: its routes, migrations, cached queries and classes, job types,
 * start-up steps, seed and settings. `fleet up --app ./app.ts` (and `fleet web` / `fleet worker` /
 * `fleet migrate` / `fleet seed` with the same flag, or a `fleet.config.*` file) runs it on the whole stack.
 * `defineApp` checks the declaration at once, so a mistake fails where it is written, with a code.
 */
import type { CachedClass } from '../cache/cache.js'
import type { AnyCachedQuery } from '../cache/cached-query.js'
import {
  type Config,
  settings as fleetSettings,
  type SettingSpecs,
  type SettingsOf,
} from '../config/index.js'
import type { Database } from '../db/database.js'
import type { Migration } from '../db/migrations/index.js'
import type { AnyJobType } from '../jobs/define.js'
import { DuplicateJobTypeError } from '../jobs/errors.js'
import type { AppDeps } from '../process/deps.js'
import type { Routes } from '../web/server.js'
import { AppInvalidError, DuplicateCachedClassError, DuplicateMigrationError } from './errors.js'

/** Reports a seed's progress: rows done of the phase's total. */
export type SeedProgress = (done: number, total: number, phase: string) => void

/** Demo or reference data that `fleet seed` loads, and `fleet up` on an empty database (FLEET_SEED). */
export interface AppSeed {
  /** True when the app's data is empty (`fleet up` seeds only then). */
  isEmpty(db: Database): Promise<boolean>
  /** Loads the data (after the migrations); returns a one-line summary for the terminal. */
  run(db: Database, config: Config, onProgress: SeedProgress): Promise<string>
  /** Deletes what the seed made, for `fleet seed --reset`. */
  reset?(db: Database): Promise<void>
}

/** What an application declares. Only `name` is required. */
export interface AppDefinition {
  /** Lower-case name (logs, errors, the OpenAPI title when `title` is unset): `hello`. */
  readonly name: string
  /** Title and version of the OpenAPI document (`/openapi.json`). */
  readonly title?: string
  readonly version?: string
  /**
   * The app's own settings, declared with `setting.*` like Fleet's: read from the environment (and from
   * `--flags` of the commands they name), validated at start, handed to every process of the stack.
   * Read them with `appSettings(specs, deps.config)`.
   */
  readonly settings?: SettingSpecs
  /** Its migrations, applied in order after Fleet's own, once, under the migration lock. */
  readonly migrations?: readonly Migration[]
  /** Fastify route plugins `(app, deps) => ...`, registered in order on every web server. */
  readonly routes?: readonly Routes[]
  /** Its cached queries (`defineQuery`): each is checked against the schema when a process starts. */
  readonly queries?: readonly AnyCachedQuery[]
  /** Its cached classes (a static `cache` spec each): registered with the serializer when a process starts. */
  // biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list of classes of any instance and id type
  readonly classes?: readonly CachedClass<any, any>[]
  /** Its job types (`defineJob`): web servers enqueue them, workers run them. */
  readonly jobs?: readonly AnyJobType[]
  /** Steps of a web server: after migrations, before it listens; after it closed, before its pools close. */
  readonly web?: {
    readonly beforeListen?: (deps: AppDeps) => Promise<void>
    readonly afterClose?: (deps: AppDeps) => Promise<void>
  }
  /** Steps of a worker: after migrations, before it takes jobs; after it stopped taking them. */
  readonly worker?: {
    readonly beforeStart?: (deps: AppDeps) => Promise<void>
    readonly afterStop?: (deps: AppDeps) => Promise<void>
  }
  /** Data that `fleet seed` loads (and `fleet up`, when the app reports it empty). */
  readonly seed?: AppSeed
}

const BRAND = Symbol.for('fleet.app')

/** A checked application (what `defineApp` returns): every list is present, possibly empty. */
export interface FleetApp extends AppDefinition {
  readonly [BRAND]: true
  readonly settings: SettingSpecs
  readonly migrations: readonly Migration[]
  readonly routes: readonly Routes[]
  readonly queries: readonly AnyCachedQuery[]
  // biome-ignore lint/suspicious/noExplicitAny: see AppDefinition.classes
  readonly classes: readonly CachedClass<any, any>[]
  readonly jobs: readonly AnyJobType[]
}

const NAME = /^[a-z][a-z0-9-]{0,39}$/
const MIGRATION_ID = /^[A-Za-z0-9_.-]{1,100}$/

/** True for what `defineApp` returned (in this copy of Fleet or another). */
export function isFleetApp(v: unknown): v is FleetApp {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true
}

/**
 * Declares an application. Throws a coded error for a declaration Fleet cannot run: a bad name, a setting
 * that clashes with Fleet's, two migrations with one id, two job types or cached classes with one name.
 * @example
 * export default defineApp({
 *   name: 'hello',
 *   migrations: [{ id: '001_hello', up: 'CREATE TABLE greetings (id int PRIMARY KEY, text text NOT NULL)' }],
 *   routes: [async (app, deps) => app.get('/hello', async () => (await deps.cache.run(greetings, [])).rows)],
 *   jobs: [shout],
 * })
 */
export function defineApp(definition: AppDefinition): FleetApp {
  const name = definition?.name
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new AppInvalidError(
      JSON.stringify(name ?? null),
      'name must be 1-40 lower-case letters, digits and dashes, starting with a letter',
    )
  }
  const problem = (what: string) => new AppInvalidError(name, what)
  const list = <T>(key: keyof AppDefinition, check: (v: T) => boolean, what: string): readonly T[] => {
    const v = definition[key] as unknown
    if (v === undefined) return []
    if (!Array.isArray(v)) throw problem(`${key} must be an array of ${what}`)
    v.forEach((item, i) => {
      if (!check(item)) throw problem(`${key}[${i}] is not ${what}`)
    })
    return Object.freeze([...v])
  }

  const migrations = list<Migration>(
    'migrations',
    (m) => typeof m?.id === 'string' && MIGRATION_ID.test(m.id) && typeof m.up === 'string',
    'a migration { id, up } (id: letters, digits, _ . -; up: SQL)',
  )
  unique(
    migrations.map((m) => m.id),
    (id) => new DuplicateMigrationError(id),
  )
  const jobs = list<AnyJobType>(
    'jobs',
    (t) => typeof t?.name === 'string' && typeof t.process === 'function',
    'a defineJob() result',
  )
  unique(
    jobs.map((t) => t.name),
    (n) => new DuplicateJobTypeError(n),
  )
  // biome-ignore lint/suspicious/noExplicitAny: see AppDefinition.classes
  const classes = list<CachedClass<any, any>>(
    'classes',
    (c) =>
      typeof c === 'function' && typeof c.cache?.name === 'string' && typeof c.cache.assemble === 'function',
    'a class with a static cache = { name, key, tags, assemble }',
  )
  unique(
    classes.map((c) => c.cache.name),
    (n) => new DuplicateCachedClassError(n),
  )
  const routes = list<Routes>('routes', (r) => typeof r === 'function', 'a route plugin (app, deps) => ...')
  const queries = list<AnyCachedQuery>(
    'queries',
    (q) => typeof q?.name === 'string' && typeof q.sql === 'string',
    'a defineQuery() result',
  )
  const settings = definition.settings ?? {}
  checkSettings(name, settings)
  for (const step of ['web', 'worker'] as const) {
    const steps = definition[step] as Record<string, unknown> | undefined
    for (const [k, fn] of Object.entries(steps ?? {}))
      if (typeof fn !== 'function') throw problem(`${step}.${k} must be an async function (deps) => ...`)
  }
  const seed = definition.seed
  if (seed !== undefined && (typeof seed.isEmpty !== 'function' || typeof seed.run !== 'function'))
    throw problem('seed must have isEmpty(db) and run(db, config, onProgress)')

  return Object.freeze({
    ...definition,
    [BRAND]: true as const,
    settings: Object.freeze({ ...settings }),
    migrations,
    routes,
    queries,
    classes,
    jobs,
  })
}

function unique(values: readonly string[], error: (value: string) => Error): void {
  const seen = new Set<string>()
  for (const v of values) {
    if (seen.has(v)) throw error(v)
    seen.add(v)
  }
}

/** An app's settings must not reuse a key or a variable of Fleet's own, nor one of each other. */
function checkSettings(app: string, specs: SettingSpecs): void {
  const fleetEnv = new Map(Object.entries(fleetSettings).map(([k, s]) => [s.env, k]))
  const envs = new Set<string>()
  for (const [key, spec] of Object.entries(specs)) {
    if (typeof spec?.env !== 'string' || typeof spec.parse !== 'function')
      throw new AppInvalidError(
        app,
        `settings.${key} must be declared with setting.* (from '@fleet-stack/fleet')`,
      )
    if (key in fleetSettings)
      throw new AppInvalidError(app, `settings.${key} is one of Fleet's own settings; rename it`)
    const taken = fleetEnv.get(spec.env)
    if (taken)
      throw new AppInvalidError(app, `settings.${key} reads ${spec.env}, which Fleet reads (${taken})`)
    if (envs.has(spec.env)) throw new AppInvalidError(app, `two settings read ${spec.env}`)
    envs.add(spec.env)
  }
}

/**
 * An app's resolved settings, read back from the config of the process (they are resolved with Fleet's).
 * @example const { greeting } = appSettings(helloSettings, deps.config)
 */
export function appSettings<S extends SettingSpecs>(specs: S, config: object): SettingsOf<S> {
  const values = config as Readonly<Record<string, unknown>>
  const out: Record<string, unknown> = {}
  for (const [key, spec] of Object.entries(specs)) {
    if (values[key] === undefined && spec.default !== undefined)
      throw new Error(`appSettings: the config has no ${key}; load it with the app's settings (extra)`)
    out[key] = values[key]
  }
  return Object.freeze(out) as SettingsOf<S>
}
