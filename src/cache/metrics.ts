/** The cache's Prometheus metrics, registered on the registry the process passes in (a private one otherwise). */
import { Counter, Gauge, Registry } from 'prom-client'
import type { BreakerState } from './breaker.js'

export type CacheKind = 'query' | 'object' | 'response'

type CounterName =
  | 'hits'
  | 'misses'
  | 'stale'
  | 'bypass'
  | 'fills'
  | 'fillsRefused'
  | 'lockWaits'
  | 'loaderErrors'

export class CacheMetrics {
  readonly registry: Registry
  readonly hits: Counter<'kind'>
  readonly misses: Counter<'kind'>
  readonly stale: Counter<'kind'>
  readonly bypass: Counter<'kind'>
  readonly fills: Counter<'kind'>
  readonly fillsRefused: Counter<'kind'>
  readonly lockWaits: Counter<'kind'>
  readonly loaderErrors: Counter<'kind'>
  readonly invalidations: Counter<'source'>
  readonly breaker: Gauge

  constructor(registry: Registry = new Registry()) {
    this.registry = registry
    const counter = (name: string, help: string) =>
      new Counter({ name, help, labelNames: ['kind'] as const, registers: [registry] })
    this.hits = counter('fleet_cache_hits_total', 'Reads served from a fresh, valid cache entry.')
    this.misses = counter(
      'fleet_cache_misses_total',
      'Reads that found no valid entry and loaded from PostgreSQL.',
    )
    this.stale = counter(
      'fleet_cache_stale_total',
      'Reads served from an expired entry inside its grace period.',
    )
    this.bypass = counter(
      'fleet_cache_bypass_total',
      'Reads that skipped the cache (disabled, breaker open, uncacheable).',
    )
    this.fills = counter('fleet_cache_fills_total', 'Entries stored after a load.')
    this.fillsRefused = counter(
      'fleet_cache_fills_refused_total',
      'Loads whose result was not stored because a tag was invalidated while they ran (no stale set).',
    )
    this.lockWaits = counter(
      'fleet_cache_lock_waits_total',
      'Reads that waited for another server to fill an entry.',
    )
    this.loaderErrors = counter(
      'fleet_cache_loader_errors_total',
      'Loads that failed or passed their hard timeout.',
    )
    this.invalidations = new Counter({
      name: 'fleet_cache_invalidations_total',
      help: 'Tags whose token was replaced, by source (write: Fleet writes; notify: PostgreSQL triggers; api).',
      labelNames: ['source'] as const,
      registers: [registry],
    })
    this.breaker = new Gauge({
      name: 'fleet_cache_breaker_state',
      help: 'Cache Redis circuit breaker: 0 closed, 1 half-open, 2 open.',
      registers: [registry],
    })
    this.breaker.set(0)
  }

  readonly #bound = new Map<string, { inc(): void }>()

  /** Counts one event (label children are bound once: a hit should not hash labels). */
  inc(name: CounterName, kind: CacheKind): void {
    const k = `${name}:${kind}`
    let c = this.#bound.get(k)
    if (!c) {
      c = this[name].labels({ kind })
      this.#bound.set(k, c)
    }
    c.inc()
  }

  breakerChanged(state: BreakerState): void {
    this.breaker.set(state === 'closed' ? 0 : state === 'half-open' ? 1 : 2)
  }
}
