/**
 * Prometheus metrics of the load balancer, in a registry of its own (never prom-client's global one, so
 * several load balancers, or a load balancer and a web server, can live in one process).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { UpstreamSet } from './upstream-set.js'

export class LbMetrics {
  readonly registry = new Registry()
  readonly retries: Counter<'stage'>
  readonly retriesDenied: Counter
  readonly ejections: Counter<'upstream'>
  readonly clientAborts: Counter
  readonly errors: Counter<'code'>
  readonly #requests: Counter<'code'>
  readonly #duration: Histogram
  /** The unlabelled child: its observe skips the per-call closure and label object of `observe(value)`. */
  readonly #durationAll: Histogram.Internal<string>
  /** Children by status code, so the hot path does no label lookups. */
  readonly #byCode = new Map<number, Counter.Internal>()
  clientConnections = 0

  constructor(upstreams: () => UpstreamSet, now: () => number) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry, prefix: 'fleet_lb_' })
    this.#requests = new Counter({
      name: 'fleet_lb_requests_total',
      help: 'Client requests answered, by status code (0: the client went away first).',
      labelNames: ['code'],
      registers,
    })
    this.#duration = new Histogram({
      name: 'fleet_lb_request_duration_seconds',
      help: 'Time from the request reaching the load balancer to the end of its response.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    this.#durationAll = this.#duration.labels()
    this.retries = new Counter({
      name: 'fleet_lb_retries_total',
      help: 'Requests sent again on another upstream, by the stage at which the attempt failed.',
      labelNames: ['stage'],
      registers,
    })
    this.retriesDenied = new Counter({
      name: 'fleet_lb_retries_denied_total',
      help: 'Retries that were allowed by the rules but refused by the retry budget.',
      registers,
    })
    this.ejections = new Counter({
      name: 'fleet_lb_ejections_total',
      help: 'Passive ejections of an upstream after consecutive failures.',
      labelNames: ['upstream'],
      registers,
    })
    this.clientAborts = new Counter({
      name: 'fleet_lb_client_aborts_total',
      help: 'Requests whose client went away before the response was complete.',
      registers,
    })
    this.errors = new Counter({
      name: 'fleet_lb_errors_total',
      help: 'Error answers of the load balancer itself, by code.',
      labelNames: ['code'],
      registers,
    })
    registerStateGauges(registers, upstreams, now, () => this.clientConnections)
  }

  /** Counts `n` finished client requests under the answer class `label` (`2xx`: an engine that counts by class). */
  countRequests(label: string, n: number): void {
    if (n > 0) this.#requests.labels(label).inc(n)
  }

  /** Counts one finished client request. */
  observe(code: number, seconds: number): void {
    let c = this.#byCode.get(code)
    if (!c) {
      c = this.#requests.labels(String(code))
      this.#byCode.set(code, c)
    }
    c.inc()
    this.#durationAll.observe(seconds)
  }
}

/** Gauges read at each scrape: requests in flight and up-ness per upstream, panic, client connections. */
function registerStateGauges(
  registers: Registry[],
  upstreams: () => UpstreamSet,
  now: () => number,
  clientConnections: () => number,
): void {
  new Gauge({
    name: 'fleet_lb_upstream_inflight',
    help: 'Requests in flight on each upstream.',
    labelNames: ['upstream'],
    registers,
    collect() {
      this.reset()
      for (const u of upstreams().all()) this.set({ upstream: u.origin }, u.inflight)
    },
  })
  new Gauge({
    name: 'fleet_lb_upstream_up',
    help: 'Whether each upstream takes new requests (healthy, not ejected, not draining).',
    labelNames: ['upstream'],
    registers,
    collect() {
      this.reset()
      const t = now()
      for (const u of upstreams().all()) this.set({ upstream: u.origin }, u.eligible(t) ? 1 : 0)
    },
  })
  new Gauge({
    name: 'fleet_lb_panic',
    help: 'Whether the load balancer is in panic mode: too few healthy upstreams, so it routes over all of them.',
    registers,
    collect() {
      this.set(upstreams().panic(now()) ? 1 : 0)
    },
  })
  new Gauge({
    name: 'fleet_lb_connections',
    help: 'Client connections open now.',
    registers,
    collect() {
      this.set(clientConnections())
    },
  })
}
