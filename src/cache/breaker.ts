/**
 * A circuit breaker for the cache Redis. Closed: every call goes through. After `threshold` consecutive
 * failures it opens: calls are refused at once (the cache is bypassed, nobody waits on a dead Redis). After
 * `cooldownMs` one call is let through as a probe; its success closes the breaker, its failure reopens it.
 */
export type BreakerState = 'closed' | 'open' | 'half-open'

export interface BreakerOptions {
  threshold: number
  cooldownMs: number
  /** Injectable clock (ms). */
  now?: () => number
  onChange?: (state: BreakerState) => void
}

export class Breaker {
  readonly #o: BreakerOptions
  readonly #now: () => number
  #failures = 0
  #openedAt = 0
  #state: BreakerState = 'closed'
  #probing = false

  constructor(options: BreakerOptions) {
    this.#o = options
    this.#now = options.now ?? Date.now
  }

  get state(): BreakerState {
    return this.#state
  }

  /** True when a call may go to Redis now (in half-open, only one probe at a time). */
  allow(): boolean {
    if (this.#state === 'closed') return true
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#o.cooldownMs) this.#set('half-open')
    if (this.#state === 'half-open' && !this.#probing) {
      this.#probing = true
      return true
    }
    return false
  }

  success(): void {
    this.#failures = 0
    this.#probing = false
    if (this.#state !== 'closed') this.#set('closed')
  }

  failure(): void {
    this.#failures++
    const wasProbe = this.#probing
    this.#probing = false
    if (wasProbe || this.#state === 'half-open' || this.#failures >= this.#o.threshold) this.open()
  }

  /** Opens at once (the connection dropped: no point in waiting for more failures). */
  open(): void {
    this.#openedAt = this.#now()
    this.#probing = false
    if (this.#state !== 'open') this.#set('open')
  }

  #set(state: BreakerState): void {
    this.#state = state
    this.#o.onChange?.(state)
  }
}
