/**
 * When a failed attempt may be sent again (the retry budget, which bounds how often, is retry-budget.ts).
 *
 * The rules (each follows from what the upstream may already have done):
 * - the connection could not be made: nothing reached the upstream, so any method is retried;
 * - the connection failed before any response byte: the upstream may have acted, so only idempotent
 *   methods (GET, HEAD, OPTIONS, PUT, DELETE: RFC 9110 9.2.2, and what HAProxy's engine retries) or a
 *   request with an `Idempotency-Key` are retried, and one with a body only when the body was kept for
 *   replay;
 * - a response byte went to the client, or the upstream was too slow (504): never.
 */

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])

export type FailureStage = 'connect' | 'sent' | 'response'

export interface RetryContext {
  method: string
  /** The request has a body. */
  hasBody: boolean
  /** The body is held in memory and can be sent again. */
  replayable: boolean
  /** The request carries an Idempotency-Key header. */
  idempotencyKey: boolean
}

/** True when a request that failed at `stage` may be sent again (the budget aside). */
export function mayRetry(ctx: RetryContext, stage: FailureStage): boolean {
  if (stage === 'response') return false
  // The body is piped only once the connection is up, so after a connect failure it is still untouched.
  if (stage === 'connect') return true
  if (ctx.hasBody && !ctx.replayable) return false
  return IDEMPOTENT.has(ctx.method) || ctx.idempotencyKey
}
