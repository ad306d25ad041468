/**
 * When a failed attempt may be sent again, and a budget that keeps retries a bounded share of traffic.
 *
 * The rules (each follows from what the upstream may already have done):
 * - the connection could not be made: nothing reached the upstream, so any method is retried;
 * - the connection failed before any response byte: the upstream may have acted, so only idempotent
 *   methods (GET, HEAD, OPTIONS, PUT, DELETE) without a body, or requests whose body was kept for replay
 *   and that carry an `Idempotency-Key`, are retried;
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
  if (ctx.hasBody) return ctx.replayable && ctx.idempotencyKey
  return IDEMPOTENT.has(ctx.method) || ctx.idempotencyKey
}

/**
 * Retries allowed in a sliding window of 10 one-second buckets: `percent`% of the requests in the window
 * plus `minPerSecond` a second, so a quiet LB can still retry and a failing one cannot multiply its load.
 */
export class RetryBudget {
  readonly #percent: number
  readonly #minPerSecond: number
  readonly #now: () => number
  readonly #requests = new Array<number>(10).fill(0)
  readonly #retries = new Array<number>(10).fill(0)
  #second = 0

  constructor(percent: number, minPerSecond: number, now: () => number) {
    this.#percent = percent
    this.#minPerSecond = minPerSecond
    this.#now = now
  }

  #rotate(now: number): number {
    const s = Math.floor(now / 1000)
    if (s !== this.#second) {
      const gap = Math.min(10, Math.max(0, s - this.#second))
      for (let i = 1; i <= gap; i++) {
        const idx = (this.#second + i) % 10
        this.#requests[idx] = 0
        this.#retries[idx] = 0
      }
      this.#second = s
    }
    return s % 10
  }

  /** Counts one client request (`now`: the caller's clock reading, to spare another). */
  request(now: number = this.#now()): void {
    this.#requests[this.#rotate(now)]++
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    const idx = this.#rotate(this.#now())
    let requests = 0
    let retries = 0
    for (let i = 0; i < 10; i++) {
      requests += this.#requests[i]
      retries += this.#retries[i]
    }
    const allowed = (requests * this.#percent) / 100 + this.#minPerSecond * 10
    if (retries + 1 > allowed) return false
    this.#retries[idx]++
    return true
  }
}
