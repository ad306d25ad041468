/**
 * `@fleet-stack/fleet/errors`: every error class an app may throw or branch on (`err instanceof
 * JobCancelledError`, or `isFleetError(err) && err.code === '...'`). Each has a stable `code`, listed with
 * its meaning and fix in docs/errors.md.
 */
export * from './app/errors.js'
export { FleetError, isFleetError } from './errors.js'
export {
  DuplicateJobTypeError,
  JobCancelledError,
  JobNotFoundError,
  JobPayloadInvalidError,
  JobPermanentError,
} from './jobs/errors.js'
export {
  BadRequestError,
  BodyTooLargeError,
  InvalidValueError,
  LoginThrottledError,
  RouteNotFoundError,
  UnavailableError,
  UnsupportedMediaTypeError,
  ValidationError,
} from './web/errors.js'
export { AuthenticationRequiredError, ForbiddenError } from './web/session.js'
