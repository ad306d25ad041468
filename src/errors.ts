/**
 * The base of every error Fleet throws on purpose. Each subclass has a stable `code` (callers branch on it,
 * HTTP error bodies carry it) and, when it maps to an HTTP answer, a `statusCode`. Components keep their
 * errors in their own `errors.ts`; `test/errors.test.ts` keeps every code documented in `docs/errors.md`.
 */
export class FleetError extends Error {
  /** Stable machine-readable code, `FLEET_E_<COMPONENT>_<WHAT>`. */
  static code = 'FLEET_E_INTERNAL'
  /** HTTP status this error answers with when it reaches a client. */
  static statusCode = 500

  /** Extra, safe-to-show context for the client (`details` in the HTTP error body). */
  details?: unknown

  get code(): string {
    return (this.constructor as typeof FleetError).code
  }

  get statusCode(): number {
    return (this.constructor as typeof FleetError).statusCode
  }

  constructor(message: string, options?: ErrorOptions & { details?: unknown }) {
    super(message, options)
    this.name = this.constructor.name
    if (options?.details !== undefined) this.details = options.details
  }
}

/**
 * True when `err` is a FleetError (of any subclass), also one thrown by another copy of Fleet's modules (an
 * app that bundled its own): an Error whose `code` is a `FLEET_E_*` code and whose `statusCode` is a number.
 */
export function isFleetError(err: unknown): err is FleetError {
  if (err instanceof FleetError) return true
  const e = err as { code?: unknown; statusCode?: unknown } | null
  return (
    err instanceof Error &&
    typeof e?.code === 'string' &&
    e.code.startsWith('FLEET_E_') &&
    typeof e.statusCode === 'number'
  )
}

/** The JSON body of an error answer, the same for every route: `{ error: { code, message, details? } }`. */
export function errorBody(
  err: FleetError,
  message: string = err.message,
): { error: { code: string; message: string; details?: unknown } } {
  return {
    error: { code: err.code, message, ...(err.details !== undefined ? { details: err.details } : {}) },
  }
}

/**
 * A port a process (`fleet up`'s stores and children, `fleet web`, `worker`, `lb`) needs is taken by another
 * program; the message names the setting to change.
 */
export class PortInUseError extends FleetError {
  static override code = 'FLEET_E_STACK_PORT_IN_USE'
  constructor(
    readonly port: number,
    readonly setting: string,
    readonly what: string,
    options?: ErrorOptions,
  ) {
    super(
      `port ${port} (${what}) is already in use: stop what holds it, or pick another port with ${setting}=<port> (${setting}=0 picks a free one)`,
      options,
    )
  }
}

/** `err` as a PortInUseError when it is a listen's EADDRINUSE, else `err` itself. */
export function portTaken(err: unknown, port: number, setting: string, what: string): unknown {
  return (err as NodeJS.ErrnoException)?.code === 'EADDRINUSE'
    ? new PortInUseError(port, setting, what, { cause: err })
    : err
}
