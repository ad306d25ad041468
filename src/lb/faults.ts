/**
 * What a failed try means, as pure rules: which kind of fault it is, whether the request may go to another
 * upstream, and whether the fault counts against the upstream's passive health (ejection). The Exchange acts
 * on the answer; nothing here does I/O, so every rule is tested as a plain function (test/lb/faults.test.ts).
 *
 * Passive health hears only of faults of the upstream itself, never of what a client sent: a client could
 * otherwise eject servers at will. What counts: a failed connection, exchange or response parse before the
 * response headers (`isUpstreamError`), a gateway answer (502, 503, 504: `isGatewayFailure`), and a try that
 * passed its try timeout and then lost to a hedge (exchange.ts).
 */
import type { FleetError } from '../errors.js'
import { ClientTimeoutError, MalformedRequestError, RequestBodyTooLargeError } from './errors.js'
import { type FailureStage, mayRetry, type RetryContext } from './retry.js'
import type { TryState } from './try.js'

export type FaultKind =
  /** The client's doing: its body too slow or too large, a request undici refuses to forward. */
  | 'client'
  /** No connection was made (refused, connect timeout): nothing reached the upstream. */
  | 'connect'
  /** The connection failed after the request went, before any response byte (reset, closed, bad response). */
  | 'no-response'
  /** No response headers within FLEET_LB_HEADERS_TIMEOUT. */
  | 'headers-timeout'
  /** The response failed after its headers went to the client (reset mid-body, body timeout, short body). */
  | 'response-cut'

export interface Fault {
  readonly kind: FaultKind
  /** How far the try had got, as the retry rules and the `fleet_lb_retries_total{stage}` label name it. */
  readonly stage: FailureStage
  /** May be sent to another upstream (within FLEET_LB_RETRIES and the retry budget). */
  readonly retryable: boolean
  /** Counts against the upstream's passive health. */
  readonly upstreamFault: boolean
  /** The coded error the client gets, for kind `client`. */
  readonly clientError?: FleetError
}

/** How far a try in `state` had got: before a connection, after sending, or with a response under way. */
export function stageOf(state: TryState): FailureStage {
  if (state === 'connecting') return 'connect'
  if (state === 'sent') return 'sent'
  return 'response'
}

/**
 * Classifies `err`, reported by undici for a try in `state` (the state when the error came), for a request
 * described by `request`.
 * @example classify(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 'connecting', post)
 * // { kind: 'connect', stage: 'connect', retryable: true, upstreamFault: true }
 */
export function classify(err: Error, state: TryState, request: RetryContext): Fault {
  const stage = stageOf(state)
  // Bytes of the response may have gone to the client: never retried, and the headers already counted.
  if (stage === 'response') return { kind: 'response-cut', stage, retryable: false, upstreamFault: false }
  const client = clientError(err)
  if (client) return { kind: 'client', stage, retryable: false, upstreamFault: false, clientError: client }
  const upstreamFault = isUpstreamError(err)
  // The upstream is probably still working on it: a retry would double the load of a slow system.
  if (codeOf(err) === 'UND_ERR_HEADERS_TIMEOUT')
    return { kind: 'headers-timeout', stage, retryable: false, upstreamFault }
  return {
    kind: stage === 'connect' ? 'connect' : 'no-response',
    stage,
    retryable: mayRetry(request, stage),
    upstreamFault,
  }
}

/** Upstream answers that say the upstream itself failed (Envoy's gateway failures); a 500 may be the client's doing. */
const GATEWAY_FAILURES = new Set([502, 503, 504])

/** True for an upstream answer that counts against its health: 502, 503, 504. */
export function isGatewayFailure(statusCode: number): boolean {
  return GATEWAY_FAILURES.has(statusCode)
}

/** Error codes of a failed connection, exchange or response parse on the upstream side. */
const UPSTREAM_CODES = new Set([
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_INFO',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
])

/** True for a fault of the upstream or of the path to it (system errors like ECONNRESET, undici's socket errors, a bad response). */
export function isUpstreamError(err: Error): boolean {
  const code = codeOf(err)
  if (!code) return false
  return UPSTREAM_CODES.has(code) || code.startsWith('HPE_') || /^E[A-Z]+$/.test(code)
}

/** Client errors that undici reports while sending a request: the request was the problem, not the upstream. */
const CLIENT_CODES = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
])

/** The coded client error for `err` when the client caused it, else undefined. */
export function clientError(err: Error): FleetError | undefined {
  if (err instanceof ClientTimeoutError || err instanceof RequestBodyTooLargeError) return err
  const code = codeOf(err)
  if (code && CLIENT_CODES.has(code))
    return new MalformedRequestError(`the request cannot be forwarded: ${err.message}`, { cause: err })
  return undefined
}

function codeOf(err: Error): string | undefined {
  return (err as { code?: string }).code
}
