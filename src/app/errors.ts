import { FleetError } from '../errors.js'

/** The application module named by --app, FLEET_APP or a fleet.config file does not exist. */
export class AppNotFoundError extends FleetError {
  static override code = 'FLEET_E_APP_NOT_FOUND'
  constructor(
    readonly spec: string,
    readonly from: string,
  ) {
    super(
      `app module ${JSON.stringify(spec)} (from ${from}) does not exist: give the path of a .js or .ts file ` +
        'whose default export is defineApp({...})',
    )
  }
}

/** The application module could not be imported, or what it exports is not a defineApp() result. */
export class AppInvalidError extends FleetError {
  static override code = 'FLEET_E_APP_INVALID'
  constructor(
    readonly app: string,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`app ${app}: ${problem}`, options)
  }
}

/** Two migrations of the application (or one of it and one of Fleet's) have the same id. */
export class DuplicateMigrationError extends FleetError {
  static override code = 'FLEET_E_APP_DUPLICATE_MIGRATION'
  constructor(readonly id: string) {
    super(
      `two migrations have the id ${JSON.stringify(id)}: ids are recorded in fleet_migrations, so each must ` +
        'be unique and never change once released (e.g. "001_hello_schema")',
    )
  }
}

/** Two cached classes of the application have the same cache name. */
export class DuplicateCachedClassError extends FleetError {
  static override code = 'FLEET_E_APP_DUPLICATE_CLASS'
  constructor(readonly className: string) {
    super(`two cached classes are named ${JSON.stringify(className)} (static cache.name): give each its own`)
  }
}

/** A cached query the application declared cannot go through the query cache. */
export class QueryNotCacheableError extends FleetError {
  static override code = 'FLEET_E_APP_QUERY_NOT_CACHEABLE'
  constructor(
    readonly query: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`cached query ${JSON.stringify(query)} cannot be cached: ${reason}`, options)
  }
}

/** A start-up step of the application (web.beforeListen, worker.beforeStart) failed. */
export class AppStartError extends FleetError {
  static override code = 'FLEET_E_APP_START'
  constructor(
    readonly app: string,
    readonly step: string,
    options?: ErrorOptions,
  ) {
    super(
      `app ${app}: ${step} failed: ${(options?.cause as Error | undefined)?.message ?? 'unknown error'}`,
      options,
    )
  }
}

/** `fleet seed` was run for an application that declares no seed. */
export class AppHasNoSeedError extends FleetError {
  static override code = 'FLEET_E_APP_NO_SEED'
  constructor(
    readonly app: string,
    what = 'no seed: add seed: { isEmpty, run } to its defineApp({...})',
  ) {
    super(`app ${app} declares ${what}`)
  }
}
