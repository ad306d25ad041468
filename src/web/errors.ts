import { FleetError } from '../errors.js'

/** The body or query did not match the route's schema; `details.field` names the first bad field. */
export class ValidationError extends FleetError {
  static override code = 'FLEET_E_HTTP_VALIDATION'
  static override statusCode = 400
}

/** The request is malformed in another way (bad JSON, empty JSON body, bad header). */
export class BadRequestError extends FleetError {
  static override code = 'FLEET_E_HTTP_BAD_REQUEST'
  static override statusCode = 400
}

/** No route matches the method and path. */
export class RouteNotFoundError extends FleetError {
  static override code = 'FLEET_E_HTTP_NOT_FOUND'
  static override statusCode = 404
}

/** The request body is larger than FLEET_BODY_LIMIT (or the route's own limit). */
export class BodyTooLargeError extends FleetError {
  static override code = 'FLEET_E_HTTP_BODY_TOO_LARGE'
  static override statusCode = 413
}

/** The request's Content-Type is not one the route accepts. */
export class UnsupportedMediaTypeError extends FleetError {
  static override code = 'FLEET_E_HTTP_UNSUPPORTED_MEDIA_TYPE'
  static override statusCode = 415
}

/** The server is shutting down or a dependency is down; retry on another server or later. */
export class UnavailableError extends FleetError {
  static override code = 'FLEET_E_HTTP_UNAVAILABLE'
  static override statusCode = 503
}

/**
 * PostgreSQL refused a value of the request as data (a NUL in text, a number or a date out of range): a
 * route let through what its column cannot hold. The second line of defence behind the route's schema.
 */
export class InvalidValueError extends FleetError {
  static override code = 'FLEET_E_HTTP_INVALID_VALUE'
  static override statusCode = 400
}

/**
 * Too many failed logins for this account or from this address within FLEET_LOGIN_WINDOW; `retryAfter`
 * (seconds, also the Retry-After header) says when the next attempt is let through.
 */
export class LoginThrottledError extends FleetError {
  static override code = 'FLEET_E_HTTP_LOGIN_THROTTLED'
  static override statusCode = 429
  constructor(
    readonly scope: 'account' | 'address',
    readonly retryAfter: number,
  ) {
    super(
      `too many failed logins ${scope === 'account' ? 'for this account' : 'from this address'}; try again in ${retryAfter} s`,
      { details: { scope, retryAfter } },
    )
  }
}
