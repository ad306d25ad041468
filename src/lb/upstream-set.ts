/**
 * The current upstreams and the decisions that involve all of them: which may take a request now, picking
 * one through the balancer, passive ejection (with a cap on the share ejected at once), outlier detection
 * (an upstream that answers 5xx far more often than the others, which a client cannot cause), panic mode (too
 * few healthy: route over every upstream not draining, as Envoy's panic threshold), and removal with drain
 * (a removed upstream takes no new requests; its in-flight requests finish, then its pool closes).
 */
import type { Logger } from '../log.js'
import type { Balancer } from './balancer.js'
import { Upstream, type UpstreamOptions } from './upstream.js'

export interface UpstreamSetOptions extends UpstreamOptions {
  ejectFailures: number
  ejectTimeMs: number
  ejectMaxTimeMs: number
  ejectMaxPercent: number
  /** Percent: below this share of healthy upstreams (of those not draining), route over all of them. */
  panicThreshold: number
  /** Percent: eject an upstream whose 5xx share of answers in a window is at least this and 3x the others' (0: never). */
  outlier5xxPercent: number
}

/** Outlier detection looks at windows this long, ... */
const OUTLIER_WINDOW_MS = 10_000
/** ... among upstreams with at least this many answers in it, ... */
const OUTLIER_MIN_ANSWERS = 20
/** ... and ejects one whose 5xx share is this many times the others' (a client's bad input hits every one alike). */
const OUTLIER_FACTOR = 3

export interface UpstreamEvents {
  onEject?(upstream: Upstream, ms: number): void
  /** An upstream was added, removed, drained or undrained (an engine that mirrors the set syncs at once). */
  onMembership?(): void
}

export class UpstreamSet {
  readonly #byOrigin = new Map<string, Upstream>()
  readonly #options: UpstreamSetOptions
  readonly #balancer: Balancer
  readonly #logger: Logger
  readonly #events: UpstreamEvents
  /** Eligible upstreams, recomputed when something changed or an ejection ran out. */
  #eligible: Upstream[] = []
  #eligibleValidUntil = 0
  #dirty = true
  #panic = false
  /** Removed upstreams still finishing requests. */
  readonly #retiring = new Set<Upstream>()
  #windowEnds = 0

  constructor(options: UpstreamSetOptions, balancer: Balancer, logger: Logger, events: UpstreamEvents = {}) {
    this.#options = options
    this.#balancer = balancer
    this.#logger = logger
    this.#events = events
  }

  get balancer(): Balancer {
    return this.#balancer
  }

  /** Every current upstream (not the retiring ones). */
  all(): Upstream[] {
    return [...this.#byOrigin.values()]
  }

  get(origin: string): Upstream | undefined {
    return this.#byOrigin.get(origin)
  }

  /** Adds an upstream unless it is there; `healthy` says whether it may take requests before a check. */
  add(url: string, healthy: boolean): Upstream {
    const probe = new URL(url).origin
    const existing = this.#byOrigin.get(probe)
    if (existing) return existing
    const u = new Upstream(url, healthy, this.#options)
    this.#byOrigin.set(u.origin, u)
    this.#dirty = true
    this.#logger.info({ upstream: u.origin, healthy }, 'upstream added')
    this.#events.onMembership?.()
    return u
  }

  /** Stops sending new requests to an upstream (or lets it take them again). */
  setDraining(origin: string, draining: boolean): void {
    const u = this.#byOrigin.get(origin)
    if (!u || u.draining === draining) return
    u.draining = draining
    this.#dirty = true
    this.#logger.info({ upstream: origin, draining }, draining ? 'upstream draining' : 'upstream undrained')
    this.#events.onMembership?.()
  }

  /** Removes an upstream: no new requests; its pool closes once its in-flight requests are done. */
  remove(origin: string): void {
    const u = this.#byOrigin.get(origin)
    if (!u) return
    this.#byOrigin.delete(origin)
    u.draining = true
    this.#dirty = true
    this.#retiring.add(u)
    this.#logger.info({ upstream: origin, inflight: u.inflight }, 'upstream removed')
    this.#events.onMembership?.()
    void u.close().finally(() => this.#retiring.delete(u))
  }

  /** Health changed (active checks). */
  setHealthy(u: Upstream, healthy: boolean): void {
    if (u.healthy === healthy) return
    u.setHealthy(healthy)
    this.#dirty = true
    this.#logger.warn({ upstream: u.origin }, healthy ? 'upstream is up' : 'upstream is down')
  }

  /** The upstreams that may take a request at `now`. */
  eligible(now: number): readonly Upstream[] {
    if (this.#dirty || now >= this.#eligibleValidUntil) {
      const list: Upstream[] = []
      const serving: Upstream[] = []
      let validUntil = Number.POSITIVE_INFINITY
      for (const u of this.#byOrigin.values()) {
        if (!u.draining) serving.push(u)
        if (u.eligible(now)) list.push(u)
        else if (u.ejectedUntil > now) validUntil = Math.min(validUntil, u.ejectedUntil)
      }
      const panic = serving.length > 0 && list.length * 100 < serving.length * this.#options.panicThreshold
      if (panic !== this.#panic) {
        this.#panic = panic
        const log = {
          healthy: list.length,
          upstreams: serving.length,
          thresholdPercent: this.#options.panicThreshold,
        }
        if (panic) this.#logger.warn(log, 'panic: too few healthy upstreams, routing over all of them')
        else this.#logger.info(log, 'panic over')
      }
      this.#eligible = panic ? serving : list
      this.#eligibleValidUntil = validUntil
      this.#dirty = false
    }
    return this.#eligible
  }

  /** True while too few upstreams are healthy and requests go to all of them (as of the last `eligible`). */
  panic(now: number): boolean {
    this.eligible(now)
    return this.#panic
  }

  /** Picks an upstream for a request, avoiding `tried` when another is eligible; undefined if none is. */
  pick(now: number, tried?: readonly Upstream[]): Upstream | undefined {
    let candidates = this.eligible(now)
    if (candidates.length === 0) return undefined
    if (tried && tried.length > 0) {
      const fresh = candidates.filter((u) => !tried.includes(u))
      if (fresh.length > 0) candidates = fresh
    }
    return this.#balancer.pick(candidates, now)
  }

  /**
   * Records the outcome of one request for passive health: `failed` is an upstream fault (a connection
   * error, a timeout, a 502/503/504). `status`, when the upstream answered, feeds outlier detection.
   */
  record(u: Upstream, failed: boolean, status = 0): void {
    u.requests++
    if (status > 0 && this.#options.outlier5xxPercent > 0) this.#answered(u, status)
    if (!failed) {
      u.consecutiveFailures = 0
      return
    }
    u.failures++
    u.consecutiveFailures++
    const limit = this.#options.ejectFailures
    if (limit > 0 && u.consecutiveFailures >= limit && this.#byOrigin.get(u.origin) === u) this.#tryEject(u)
  }

  /** Counts an answer in the outlier window; at the window's end, ejects the outliers and starts the next. */
  #answered(u: Upstream, status: number): void {
    u.windowAnswers++
    if (status >= 500) u.windowErrors++
    const now = this.#options.now()
    if (this.#windowEnds === 0) this.#windowEnds = now + OUTLIER_WINDOW_MS
    if (now < this.#windowEnds) return
    this.#windowEnds = now + OUTLIER_WINDOW_MS
    const counted = [...this.#byOrigin.values()].filter((o) => o.windowAnswers >= OUTLIER_MIN_ANSWERS)
    const answers = counted.reduce((n, o) => n + o.windowAnswers, 0)
    const errors = counted.reduce((n, o) => n + o.windowErrors, 0)
    const outliers =
      counted.length < 2
        ? []
        : counted.filter((o) => {
            const share = o.windowErrors / o.windowAnswers
            const others = (errors - o.windowErrors) / (answers - o.windowAnswers)
            return share * 100 >= this.#options.outlier5xxPercent && share >= OUTLIER_FACTOR * others
          })
    for (const o of this.#byOrigin.values()) {
      o.windowAnswers = 0
      o.windowErrors = 0
    }
    for (const o of outliers)
      this.#tryEject(o, 'upstream ejected: it answers 5xx far more often than the others')
  }

  #tryEject(u: Upstream, why = 'upstream ejected after consecutive failures'): void {
    const now = this.#options.now()
    if (u.ejectedUntil > now) return
    const total = this.#byOrigin.size
    let ejected = 0
    for (const o of this.#byOrigin.values()) if (o.ejectedUntil > now) ejected++
    const cap = Math.max(1, Math.floor((total * this.#options.ejectMaxPercent) / 100))
    if (this.#options.ejectMaxPercent === 0 || ejected + 1 > cap) {
      this.#logger.warn(
        { upstream: u.origin, ejected, cap },
        'upstream failing but the ejection cap is reached',
      )
      u.consecutiveFailures = 0
      return
    }
    const ms = u.eject(this.#options.ejectTimeMs, this.#options.ejectMaxTimeMs)
    this.#dirty = true
    this.#logger.warn({ upstream: u.origin, ms, ejections: u.ejections }, why)
    this.#events.onEject?.(u, ms)
  }

  /** Closes every pool: gracefully (in-flight finish) or at once. */
  async close(force: boolean): Promise<void> {
    const all = [...this.#byOrigin.values(), ...this.#retiring]
    await Promise.all(all.map((u) => (force ? u.destroy() : u.close())))
  }
}
