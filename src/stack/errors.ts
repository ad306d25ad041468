import { FleetError } from '../errors.js'

/** A program the local stack needs (redis-server) is missing and cannot be installed here. */
export class MissingProgramError extends FleetError {
  static override code = 'FLEET_E_STACK_MISSING_PROGRAM'
  constructor(
    readonly program: string,
    readonly hint: string,
    options?: ErrorOptions,
  ) {
    super(`${program} was not found on PATH. ${hint}`, options)
  }
}

/** A local service (PostgreSQL, Redis) did not start; the message carries the end of its output. */
export class ServiceStartError extends FleetError {
  static override code = 'FLEET_E_STACK_SERVICE_START'
  constructor(
    readonly service: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`${service} did not start: ${reason}`, options)
  }
}
