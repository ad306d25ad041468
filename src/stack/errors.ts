import { FleetError } from '../errors.js'

export { PortInUseError, portTaken } from '../errors.js'

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

/** Another `fleet up` already supervises this data folder (its control socket answers). */
export class StackRunningError extends FleetError {
  static override code = 'FLEET_E_STACK_ALREADY_RUNNING'
  constructor(
    readonly dataDir: string,
    options?: ErrorOptions,
  ) {
    super(
      `a fleet up is already running on ${dataDir}: use \`fleet status\` to see it, or stop it with Ctrl-C (or SIGTERM) first`,
      options,
    )
  }
}

/** `fleet status` / `fleet restart` found no supervisor listening on the data folder's control socket. */
export class NoSupervisorError extends FleetError {
  static override code = 'FLEET_E_STACK_NOT_RUNNING'
  constructor(
    readonly socketPath: string,
    options?: ErrorOptions,
  ) {
    super(
      `no fleet up is running for this data folder (nothing answers on ${socketPath}); start it with \`fleet up\`, or pass the same --data-dir / FLEET_DATA_DIR it was started with`,
      options,
    )
  }
}

/** A child process of the stack did not become ready in time while the stack started or restarted it. */
export class ChildNotReadyError extends FleetError {
  static override code = 'FLEET_E_STACK_CHILD_NOT_READY'
  constructor(
    readonly child: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`${child} did not become ready: ${detail}`, options)
  }
}

/** A control request (`fleet restart ROLE`) named something the supervisor cannot do. */
export class ControlRequestError extends FleetError {
  static override code = 'FLEET_E_STACK_BAD_REQUEST'
  static override statusCode = 400
}
