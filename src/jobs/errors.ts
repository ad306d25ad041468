/**
 * Errors of the jobs component (docs/jobs.md). Those with a 4xx/5xx status reach HTTP clients; the others
 * end a job: their `code` is what `GET /api/jobs/:id` shows as the job's error.
 */
import { FleetError } from '../errors.js'

/** No job with this id, or it belongs to someone else (the two are not told apart). */
export class JobNotFoundError extends FleetError {
  static override code = 'FLEET_E_JOBS_NOT_FOUND'
  static override statusCode = 404
  constructor(readonly id: string) {
    super(`no job ${id}`)
  }
}

/** A job was submitted with a name no job type declares. */
export class UnknownJobTypeError extends FleetError {
  static override code = 'FLEET_E_JOBS_UNKNOWN_TYPE'
  static override statusCode = 400
  constructor(
    readonly type: string,
    known: readonly string[],
  ) {
    super(`no job type ${JSON.stringify(type)}; known: ${known.join(', ') || '(none)'}`)
  }
}

/** The payload does not match the job type's schema. */
export class JobPayloadInvalidError extends FleetError {
  static override code = 'FLEET_E_JOBS_INVALID_PAYLOAD'
  static override statusCode = 400
  constructor(type: string, problems: { path: string; message: string }[]) {
    const first = problems[0]
    super(
      `payload of ${type} is invalid: ${first ? `${first.path || '/'} ${first.message}` : 'no details'}`,
      { details: { problems } },
    )
  }
}

/** The same Idempotency-Key was sent again with a different payload. */
export class IdempotencyConflictError extends FleetError {
  static override code = 'FLEET_E_JOBS_IDEMPOTENCY_CONFLICT'
  static override statusCode = 409
  constructor(readonly id: string) {
    super(`this Idempotency-Key already started job ${id} with a different payload; use a new key`, {
      details: { id },
    })
  }
}

/** The Idempotency-Key header is empty or too long. */
export class IdempotencyKeyInvalidError extends FleetError {
  static override code = 'FLEET_E_JOBS_IDEMPOTENCY_KEY'
  static override statusCode = 400
  constructor() {
    super('Idempotency-Key must be 1 to 200 visible characters')
  }
}

/** DELETE on a job that already ended: nothing to cancel. */
export class JobFinishedError extends FleetError {
  static override code = 'FLEET_E_JOBS_FINISHED'
  static override statusCode = 409
  constructor(
    readonly id: string,
    readonly state: string,
  ) {
    super(`job ${id} already ended (${state}); there is nothing to cancel`, { details: { state } })
  }
}

/** The store Redis (the queues) cannot be reached; the submission did not happen. */
export class JobsUnavailableError extends FleetError {
  static override code = 'FLEET_E_JOBS_UNAVAILABLE'
  static override statusCode = 503
  constructor(options?: ErrorOptions) {
    super('the job queues are unavailable; retry shortly', options)
  }
}

/** One attempt ran past the job type's timeout and was aborted (it is retried if attempts remain). */
export class JobTimeoutError extends FleetError {
  static override code = 'FLEET_E_JOBS_TIMEOUT'
  constructor(
    readonly type: string,
    readonly ms: number,
  ) {
    super(`${type} did not finish within ${ms} ms`)
  }
}

/** The job was cancelled (DELETE /api/jobs/:id) while queued or running. */
export class JobCancelledError extends FleetError {
  static override code = 'FLEET_E_JOBS_CANCELLED'
  constructor() {
    super('the job was cancelled')
  }
}

/**
 * Thrown by a processor for an error that retrying cannot fix (bad input, a hostile file): the job ends
 * failed at once with `reason` as its code (upper-case words joined by `_`, e.g. `GUESTBOOK_E_LINK`) and
 * this message.
 */
export class JobPermanentError extends FleetError {
  static override code = 'FLEET_E_JOBS_PERMANENT'
  constructor(
    message: string,
    readonly reason: string = 'FLEET_E_JOBS_PERMANENT',
    options?: ErrorOptions & { details?: unknown },
  ) {
    super(message, options)
  }
}

/** A job module named in FLEET_JOB_MODULES could not be loaded or exports no `jobTypes`. */
export class JobModuleError extends FleetError {
  static override code = 'FLEET_E_JOBS_MODULE'
  constructor(
    readonly module: string,
    why: string,
    options?: ErrorOptions,
  ) {
    super(`job module ${module}: ${why}`, options)
  }
}

/** Two job types (of the app, of Fleet, of FLEET_JOB_MODULES) have the same name. */
export class DuplicateJobTypeError extends FleetError {
  static override code = 'FLEET_E_JOBS_DUPLICATE_TYPE'
  constructor(readonly jobType: string) {
    super(
      `two job types are named ${JSON.stringify(jobType)}: a name is also its queue, so give each defineJob() ` +
        'its own name (e.g. prefix them with the app name)',
    )
  }
}

/** `fleet jobs hand-off` named a worker that is still registered as alive: its jobs would run twice. */
export class WorkerAliveError extends FleetError {
  static override code = 'FLEET_E_JOBS_WORKER_ALIVE'
  constructor(readonly worker: string) {
    super(
      `worker ${worker} is still registered as alive (its heartbeat is fresh): handing its jobs on would run ` +
        'them twice; stop it first, wait for its registry entry to expire (FLEET_REGISTRY_TTL), or pass --force',
    )
  }
}

/** A `defineJob` declaration Fleet cannot run (a bad name, attempts, backoff...); thrown when the app loads. */
export class JobTypeInvalidError extends FleetError {
  static override code = 'FLEET_E_JOBS_TYPE_INVALID'
}
