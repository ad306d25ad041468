import { FleetError } from '../errors.js'

/** PostgreSQL could not be reached or refused the work; the request may be retried later. */
export class DatabaseUnavailableError extends FleetError {
  static override code = 'FLEET_E_DB_UNAVAILABLE'
  static override statusCode = 503
  constructor(options?: ErrorOptions) {
    super('the database is unavailable; retry shortly', options)
  }
}

/** A migration failed; nothing of it was applied (each migration runs in its own transaction). */
export class MigrationError extends FleetError {
  static override code = 'FLEET_E_DB_MIGRATION'
  constructor(
    readonly migration: string,
    options?: ErrorOptions,
  ) {
    super(
      `migration ${migration} failed: ${(options?.cause as Error | undefined)?.message ?? 'unknown error'}`,
      options,
    )
  }
}
