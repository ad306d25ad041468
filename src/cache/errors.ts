/** The cache's errors (codes listed in docs/cache.md and docs/errors.md). */
import { FleetError } from '../errors.js'

/** Thrown when the loader did not finish within the hard timeout (and there was no stale entry to serve). */
export class LoaderTimeoutError extends FleetError {
  static override code = 'FLEET_E_CACHE_LOADER_TIMEOUT'
  static override statusCode = 504
  constructor(
    readonly key: string,
    readonly ms: number,
    options?: ErrorOptions,
  ) {
    super(`loader for ${key} did not finish within ${ms} ms`, options)
  }
}

/** A tag is empty or holds whitespace (tags are stored space/newline separated). */
export class InvalidTagError extends FleetError {
  static override code = 'FLEET_E_CACHE_INVALID_TAG'
  static override statusCode = 500
  constructor(readonly tag: string) {
    super(`invalid cache tag ${JSON.stringify(tag)}: use 1-200 characters without spaces, e.g. products:42`)
  }
}

/** Two different classes were registered under one cache name, or a cached value holds an unregistered class. */
export class ClassRegistrationError extends FleetError {
  static override code = 'FLEET_E_CACHE_CLASS'
  static override statusCode = 500
}

/** The SQL text of a cached query could not be parsed by the PostgreSQL parser. */
export class SqlParseError extends FleetError {
  static override code = 'FLEET_E_CACHE_SQL_PARSE'
  static override statusCode = 500
  constructor(
    readonly sql: string,
    options?: ErrorOptions,
  ) {
    super(
      `cannot parse SQL for the cache: ${(options?.cause as Error | undefined)?.message ?? 'syntax error'}`,
      options,
    )
  }
}

/** An operator command (`fleet cache stats|flush`) could not reach the cache Redis. */
export class CacheUnavailableError extends FleetError {
  static override code = 'FLEET_E_CACHE_UNAVAILABLE'
  static override statusCode = 503
  constructor(options?: ErrorOptions) {
    super('the cache Redis is unavailable', options)
  }
}

/** A `defineQuery` declaration Fleet cannot use (a bad name, no SQL); thrown when the app loads. */
export class CachedQueryInvalidError extends FleetError {
  static override code = 'FLEET_E_CACHE_QUERY_INVALID'
}

/** A cached response declaration (`defineResponse`) or what its build returned cannot be cached. */
export class ResponseSpecInvalidError extends FleetError {
  static override code = 'FLEET_E_CACHE_RESPONSE_INVALID'
  static override statusCode = 500
}
