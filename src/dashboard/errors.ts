/**
 * Errors of the dashboard's HTTP endpoints on the LB admin port. Each answers with its status and a JSON body
 * `{"error":{"code","message"}}`; docs/dashboard.md lists them.
 */
import { FleetError } from '../errors.js'

/** A malformed request: bad JSON, a missing or invalid field, a body over the limit. */
export class DashboardBadRequestError extends FleetError {
  static override code = 'FLEET_E_DASHBOARD_BAD_REQUEST'
  static override statusCode = 400
}

/** An action whose body is not JSON (which also keeps other sites' forms from posting here). */
export class DashboardUnsupportedMediaTypeError extends FleetError {
  static override code = 'FLEET_E_DASHBOARD_UNSUPPORTED_MEDIA_TYPE'
  static override statusCode = 415
  constructor(found: string | undefined) {
    super(`send the action as application/json (got ${found ?? 'no content-type'})`)
  }
}

/** An action refused: wrong or missing token, a non-loopback client without one, another site's page. */
export class DashboardForbiddenError extends FleetError {
  static override code = 'FLEET_E_DASHBOARD_FORBIDDEN'
  static override statusCode = 403
}

/** A known dashboard path asked with a method it does not take. */
export class DashboardMethodNotAllowedError extends FleetError {
  static override code = 'FLEET_E_DASHBOARD_METHOD_NOT_ALLOWED'
  static override statusCode = 405
  constructor(
    readonly method: string,
    readonly allowed: string,
  ) {
    super(`${method} is not allowed here; use ${allowed}`)
  }
}

/** The job to retry is not in its queue (never existed, or removed by retention). */
export class DashboardJobNotFoundError extends FleetError {
  static override code = 'FLEET_E_DASHBOARD_JOB_NOT_FOUND'
  static override statusCode = 404
  constructor(
    readonly type: string,
    readonly id: string,
  ) {
    super(`no job ${id} in queue ${type} (removed by retention, or never there)`)
  }
}

/** The job to retry exists but did not end as failed (it waits, runs, completed, was cancelled or retried). */
export class DashboardJobNotFailedError extends FleetError {
  static override code = 'FLEET_E_DASHBOARD_JOB_NOT_FAILED'
  static override statusCode = 409
  constructor(
    readonly id: string,
    readonly state: string,
  ) {
    super(`job ${id} is ${state}, not failed: only a failed job can be retried`)
  }
}

/** What the action needs is away: the store Redis (queues), or PostgreSQL (a durable job's record). */
export class DashboardUnavailableError extends FleetError {
  static override code = 'FLEET_E_DASHBOARD_UNAVAILABLE'
  static override statusCode = 503
}

/** More live pages than FLEET_DASHBOARD_MAX_CLIENTS are open. */
export class DashboardBusyError extends FleetError {
  static override code = 'FLEET_E_DASHBOARD_BUSY'
  static override statusCode = 503
  constructor(readonly max: number) {
    super(`${max} dashboard pages are open already (FLEET_DASHBOARD_MAX_CLIENTS); close one and reload`)
  }
}
