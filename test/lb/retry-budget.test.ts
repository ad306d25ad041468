/** The retry budget's one formula (src/lb/retry-budget.ts), as the LB spends it and the dashboard shows it. */
import { describe, expect, it } from 'vitest'
import {
  RETRY_BUDGET_WINDOW_MS,
  RETRY_MIN_PER_SECOND,
  RetryBudget,
  retriesAllowed,
} from '../../src/lb/retry-budget.js'

describe('retry budget', () => {
  it('allows a share of the requests in the window plus a floor for each of its seconds', () => {
    expect(RETRY_BUDGET_WINDOW_MS).toBe(10_000)
    expect(retriesAllowed(0, 20)).toBe(RETRY_MIN_PER_SECOND * 10)
    expect(retriesAllowed(1000, 20)).toBe(200 + RETRY_MIN_PER_SECOND * 10)
    expect(retriesAllowed(100, 0, 1)).toBe(10)
  })

  it('the LB grants exactly the retries the formula allows (what the dashboard shows)', () => {
    for (const [requests, percent] of [
      [0, 20],
      [333, 20],
      [1000, 5],
      [57, 0],
    ]) {
      const t = 5_000_000
      const budget = new RetryBudget(percent, RETRY_MIN_PER_SECOND, () => t)
      for (let i = 0; i < requests; i++) budget.request()
      let granted = 0
      while (budget.tryRetry()) granted++
      expect(granted, `${requests} requests at ${percent}%`).toBe(
        Math.floor(retriesAllowed(requests, percent)),
      )
    }
  })
})
