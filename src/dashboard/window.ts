/**
 * Rates from cumulative counters: a short ring of readings per key (a process's counters, a histogram's
 * buckets; each reading a vector laid out as counters.ts names it), so a rate or a latency quantile covers the
 * last few seconds rather than the process's whole life.
 * A counter that went down means the process restarted: the window then starts at zero.
 */

interface Reading {
  t: number
  v: readonly number[]
}

export interface Delta {
  /** Seconds between the two readings compared. */
  seconds: number
  /** Growth of each counter over those seconds. */
  d: number[]
}

export class CounterWindows {
  readonly #rings = new Map<string, Reading[]>()
  readonly #spanMs: number

  /** Keeps readings up to `spanMs` old (the longest window asked for). */
  constructor(spanMs: number) {
    this.#spanMs = spanMs
  }

  /** Records the counters `v` of `key` at time `t` (epoch ms). */
  push(key: string, t: number, v: readonly number[]): void {
    let ring = this.#rings.get(key)
    if (!ring) {
      ring = []
      this.#rings.set(key, ring)
    }
    const last = ring[ring.length - 1]
    if (last && last.v.length !== v.length) ring.length = 0 // another shape: a new series
    ring.push({ t, v })
    while (ring.length > 2 && ring[1].t <= t - this.#spanMs) ring.shift()
  }

  /** Growth of `key`'s counters over about the last `windowMs` (from the oldest reading inside it). */
  delta(key: string, windowMs: number): Delta | undefined {
    const ring = this.#rings.get(key)
    if (!ring || ring.length < 2) return undefined
    const last = ring[ring.length - 1]
    let base = ring[ring.length - 2]
    for (let i = ring.length - 2; i >= 0 && ring[i].t >= last.t - windowMs; i--) base = ring[i]
    const reset = last.v.some((x, i) => x < base.v[i])
    const d = last.v.map((x, i) => (reset ? x : x - base.v[i]))
    return { seconds: Math.max(0.001, (last.t - base.t) / 1000), d }
  }

  /** Per-second rate of counter `i` of `key` over `windowMs`. */
  rate(key: string, windowMs: number, i = 0): number | undefined {
    const delta = this.delta(key, windowMs)
    return delta ? delta.d[i] / delta.seconds : undefined
  }

  /** Forgets keys with no reading in the span (processes that left). */
  prune(now: number): void {
    for (const [key, ring] of this.#rings) {
      if (ring[ring.length - 1].t < now - this.#spanMs) this.#rings.delete(key)
    }
  }
}
