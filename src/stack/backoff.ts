/**
 * The restart policy of a crashed child: wait `initialMs`, doubling after each crash up to `maxMs`; a child
 * that stayed up for `resetAfterMs` counts as healthy again and its next crash waits `initialMs` once more.
 */
export interface BackoffOptions {
  initialMs: number
  maxMs: number
  resetAfterMs: number
}

export const defaultBackoff: BackoffOptions = { initialMs: 250, maxMs: 30_000, resetAfterMs: 30_000 }

export class Backoff {
  readonly #o: BackoffOptions
  #attempt = 0

  constructor(options: BackoffOptions) {
    this.#o = options
  }

  /** Crashes in a row so far (reset by a long enough run). */
  get attempt(): number {
    return this.#attempt
  }

  /**
   * The wait before the next start, given how long the child ran before it crashed.
   * @example new Backoff({ initialMs: 250, maxMs: 1000, resetAfterMs: 30_000 }).next(10) // 250, then 500, 1000, 1000
   */
  next(uptimeMs: number): number {
    if (uptimeMs >= this.#o.resetAfterMs) this.#attempt = 0
    const delay = Math.min(this.#o.initialMs * 2 ** this.#attempt, this.#o.maxMs)
    this.#attempt = Math.min(this.#attempt + 1, 30)
    return delay
  }
}
