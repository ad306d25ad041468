/**
 * Errors of the load balancer. Each maps to the HTTP answer a client gets; the JSON body carries the code
 * (`{"error":{"code","message","requestId"}}`), and every one is logged with the request id and upstream.
 */
import { FleetError } from '../errors.js'

/** The upstream failed (connection reset, refused, bad response) and the request could not be retried. */
export class BadGatewayError extends FleetError {
  static override code = 'FLEET_E_LB_BAD_GATEWAY'
  static override statusCode = 502
  constructor(
    readonly upstream: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    // The client sees no internal address: the upstream is in the logs, with the request id.
    super(`the upstream server failed (${reason}) and the request could not be retried`, options)
  }
}

/** No upstream is healthy (or none is known): answered with 503 and `Retry-After`. */
export class NoUpstreamError extends FleetError {
  static override code = 'FLEET_E_LB_NO_UPSTREAM'
  static override statusCode = 503
  constructor(options?: ErrorOptions) {
    super('no healthy upstream is available; retry later', options)
  }
}

/** The upstream did not send its response headers within the headers timeout. */
export class UpstreamTimeoutError extends FleetError {
  static override code = 'FLEET_E_LB_UPSTREAM_TIMEOUT'
  static override statusCode = 504
  constructor(
    readonly upstream: string,
    readonly ms: number,
    options?: ErrorOptions,
  ) {
    super(`the upstream server did not answer within ${ms} ms`, options)
  }
}

/** The request is malformed or ambiguous (duplicate Host, bad framing, a request smuggling attempt). */
export class MalformedRequestError extends FleetError {
  static override code = 'FLEET_E_LB_BAD_REQUEST'
  static override statusCode = 400
}

/** The client was too slow sending its headers or body. */
export class ClientTimeoutError extends FleetError {
  static override code = 'FLEET_E_LB_CLIENT_TIMEOUT'
  static override statusCode = 408
}

/** The request headers exceed the header size limit. */
export class HeadersTooLargeError extends FleetError {
  static override code = 'FLEET_E_LB_HEADERS_TOO_LARGE'
  static override statusCode = 431
}

/** The request body exceeds the body size limit. */
export class RequestBodyTooLargeError extends FleetError {
  static override code = 'FLEET_E_LB_BODY_TOO_LARGE'
  static override statusCode = 413
  constructor(
    readonly limit: number,
    options?: ErrorOptions,
  ) {
    super(`request body is larger than ${limit} bytes`, options)
  }
}

/** The load balancer is shutting down and takes no new requests. */
export class ShuttingDownError extends FleetError {
  static override code = 'FLEET_E_LB_SHUTTING_DOWN'
  static override statusCode = 503
  constructor(options?: ErrorOptions) {
    super('the load balancer is shutting down; retry on another instance', options)
  }
}

/** A method the load balancer does not forward (CONNECT, TRACE). */
export class MethodNotAllowedError extends FleetError {
  static override code = 'FLEET_E_LB_METHOD_NOT_ALLOWED'
  static override statusCode = 405
}

/**
 * A request to the admin port, while it listens on loopback, for a Host that is not a loopback name: a web
 * page that rebound its own DNS name to 127.0.0.1 must not read /status, /metrics or the dashboard.
 */
export class AdminForbiddenError extends FleetError {
  static override code = 'FLEET_E_LB_ADMIN_FORBIDDEN'
  static override statusCode = 403
}

/** The load balancer holds as many request bodies as it may (FLEET_LB_BUFFER_MEMORY, streamed-body slots). */
export class OverloadedError extends FleetError {
  static override code = 'FLEET_E_LB_OVERLOADED'
  static override statusCode = 503
}

/** A path the public port does not serve (the web servers' /metrics and /readyz), or unknown on the admin port. */
export class NotFoundError extends FleetError {
  static override code = 'FLEET_E_LB_NOT_FOUND'
  static override statusCode = 404
}
