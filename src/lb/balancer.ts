/**
 * Balancer strategies: given the upstreams that may take a request now, pick one. A strategy holds only its
 * own cursor; health, ejection and draining are decided before it is asked (the candidates are eligible).
 *
 * - `p2c`: power of two choices. Two candidates are drawn at random (in proportion to their effective
 *   weight, so slow start and weights count) and the one with fewer outstanding requests per unit of
 *   weight wins. Good under uneven request costs, with no shared state.
 * - `round-robin`: each candidate in turn, ignoring weights.
 * - `weighted`: smooth weighted round robin (nginx's), which interleaves rather than bursts.
 */
import type { StrategyName } from './options.js'
import type { Upstream } from './upstream.js'

export interface Balancer {
  readonly name: StrategyName
  /** Picks one of `candidates` (never empty) at time `now`. */
  pick(candidates: readonly Upstream[], now: number): Upstream
}

/** A strategy by name. `random` is injectable so tests can be deterministic. */
export function createBalancer(name: StrategyName, random: () => number = Math.random): Balancer {
  switch (name) {
    case 'p2c':
      return new PowerOfTwoChoices(random)
    case 'round-robin':
      return new RoundRobin()
    case 'weighted':
      return new SmoothWeightedRoundRobin()
  }
}

export class PowerOfTwoChoices implements Balancer {
  readonly name = 'p2c'
  readonly #random: () => number

  constructor(random: () => number = Math.random) {
    this.#random = random
  }

  pick(candidates: readonly Upstream[], now: number): Upstream {
    const n = candidates.length
    if (n === 1) return candidates[0]
    let uniform = true
    const w0 = candidates[0].effectiveWeight(now)
    for (let i = 1; i < n && uniform; i++) uniform = candidates[i].effectiveWeight(now) === w0
    let a: Upstream
    let b: Upstream
    if (uniform) {
      const i = Math.floor(this.#random() * n)
      let j = Math.floor(this.#random() * (n - 1))
      if (j >= i) j++
      a = candidates[i]
      b = candidates[j]
    } else {
      a = this.#weighted(candidates, now, undefined)
      b = this.#weighted(candidates, now, a)
    }
    // Outstanding per unit of weight; a tie (both idle) goes to the first draw, which was drawn by weight,
    // so an upstream in slow start gets its share even when the load is light.
    const la = a.inflight / a.effectiveWeight(now)
    const lb = b.inflight / b.effectiveWeight(now)
    return lb < la ? b : a
  }

  /** One candidate drawn in proportion to its effective weight, other than `not`. */
  #weighted(candidates: readonly Upstream[], now: number, not: Upstream | undefined): Upstream {
    let total = 0
    for (const u of candidates) if (u !== not) total += u.effectiveWeight(now)
    let r = this.#random() * total
    let last = candidates[0]
    for (const u of candidates) {
      if (u === not) continue
      last = u
      r -= u.effectiveWeight(now)
      if (r < 0) return u
    }
    return last
  }
}

export class RoundRobin implements Balancer {
  readonly name = 'round-robin'
  #next = 0

  pick(candidates: readonly Upstream[]): Upstream {
    const u = candidates[this.#next % candidates.length]
    this.#next = (this.#next + 1) % 1_000_000_007
    return u
  }
}

export class SmoothWeightedRoundRobin implements Balancer {
  readonly name = 'weighted'
  readonly #current = new WeakMap<Upstream, number>()

  pick(candidates: readonly Upstream[], now: number): Upstream {
    let total = 0
    let best = candidates[0]
    let bestScore = Number.NEGATIVE_INFINITY
    for (const u of candidates) {
      const w = u.effectiveWeight(now)
      total += w
      const score = (this.#current.get(u) ?? 0) + w
      this.#current.set(u, score)
      if (score > bestScore) {
        bestScore = score
        best = u
      }
    }
    this.#current.set(best, bestScore - total)
    return best
  }
}
