/**
 * The retry budget: retries in the last 10 s may not exceed FLEET_LB_RETRY_BUDGET % of the requests in that
 * window plus RETRY_MIN_PER_SECOND a second, so a quiet LB can still retry and a failing one cannot multiply
 * its load. `retriesAllowed` is the one formula: the LB's RetryBudget spends against it, and the dashboard
 * shows it (src/dashboard/assemble.ts), so the two cannot drift apart.
 */

/** The window the budget looks back over (ms): 10 buckets of one second. */
export const RETRY_BUDGET_WINDOW_MS = 10_000
/** Retries a second that are always allowed, on top of the budget's share. */
export const RETRY_MIN_PER_SECOND = 10

const BUCKETS = RETRY_BUDGET_WINDOW_MS / 1000

/**
 * The retries the budget allows in one window that saw `requests` client requests.
 * @example Math.floor(retriesAllowed(100, 20)) // 120: 20% of 100, plus 10 a second over 10 s
 */
export function retriesAllowed(
  requests: number,
  percent: number,
  minPerSecond: number = RETRY_MIN_PER_SECOND,
): number {
  return (requests * percent) / 100 + minPerSecond * BUCKETS
}

/** Counts requests and retries in a sliding window of one-second buckets, and grants retries within `retriesAllowed`. */
export class RetryBudget {
  readonly #percent: number
  readonly #minPerSecond: number
  readonly #now: () => number
  readonly #requests = new Array<number>(BUCKETS).fill(0)
  readonly #retries = new Array<number>(BUCKETS).fill(0)
  #second = 0

  constructor(percent: number, minPerSecond: number, now: () => number) {
    this.#percent = percent
    this.#minPerSecond = minPerSecond
    this.#now = now
  }

  #rotate(now: number): number {
    const s = Math.floor(now / 1000)
    if (s !== this.#second) {
      const gap = Math.min(BUCKETS, Math.max(0, s - this.#second))
      for (let i = 1; i <= gap; i++) {
        const idx = (this.#second + i) % BUCKETS
        this.#requests[idx] = 0
        this.#retries[idx] = 0
      }
      this.#second = s
    }
    return s % BUCKETS
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
    for (let i = 0; i < BUCKETS; i++) {
      requests += this.#requests[i]
      retries += this.#retries[i]
    }
    if (retries + 1 > retriesAllowed(requests, this.#percent, this.#minPerSecond)) return false
    this.#retries[idx]++
    return true
  }
}
