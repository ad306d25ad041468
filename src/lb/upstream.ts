/**
 * One upstream web server as the load balancer sees it: a pool of keep-alive connections, the requests in
 * flight on it, and its state. It takes new requests only while it is healthy (active checks), not ejected
 * (passive checks) and not draining; its share ramps up during slow start after it joins or comes back.
 */
import { Pool } from 'undici'
import { upstreamConnector } from './connector.js'

export interface UpstreamOptions {
  connections: number
  connectTimeoutMs: number
  headersTimeoutMs: number
  bodyTimeoutMs: number
  idleTimeoutMs: number
  slowStartMs: number
  now: () => number
}

/** The lowest share of its weight an upstream gets at the start of slow start. */
const SLOW_START_FLOOR = 0.1

/** Parses `http://host:port#weight=3` into an origin and a weight (default 1). */
export function parseUpstreamUrl(raw: string): { origin: string; weight: number } {
  const u = new URL(raw)
  const m = /(?:^|[#&])weight=(\d+(?:\.\d+)?)/.exec(u.hash)
  const weight = m ? Number(m[1]) : 1
  if (!(weight > 0)) throw new Error(`upstream ${raw}: weight must be greater than 0`)
  return { origin: u.origin, weight }
}

export class Upstream {
  /** `http://host:port`: the key of the upstream everywhere (metrics, logs, status). */
  readonly origin: string
  readonly weight: number
  readonly pool: Pool
  /** Requests sent and not finished. */
  inflight = 0
  requests = 0
  failures = 0
  /** Active health: true once the checks say so (or from the start when the upstream is trusted). */
  healthy: boolean
  /** Set when the registry says draining or the entry vanished: no new requests. */
  draining = false
  /** Passive ejection: consecutive failed requests, times ejected, and until when. */
  consecutiveFailures = 0
  ejections = 0
  ejectedUntil = 0
  /** Outlier detection: answers, and 5xx answers that are not gateway failures, in the current window. */
  windowAnswers = 0
  windowErrors = 0
  /** When the upstream last became eligible (health up or ejection over); slow start counts from here. */
  #rampFrom: number
  readonly #options: UpstreamOptions

  constructor(url: string, healthy: boolean, options: UpstreamOptions) {
    const { origin, weight } = parseUpstreamUrl(url)
    this.origin = origin
    this.weight = weight
    this.healthy = healthy
    this.#options = options
    this.#rampFrom = options.now()
    this.pool = new Pool(origin, {
      connections: options.connections,
      pipelining: 1,
      // undici's connector with the connect timeout; an answer sent before the whole body was read is relayed.
      connect: upstreamConnector(options.connectTimeoutMs),
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: options.idleTimeoutMs,
      keepAliveMaxTimeout: options.idleTimeoutMs,
      // An upstream's `Keep-Alive: timeout=N` hint is honoured minus this margin, so the LB closes first.
      keepAliveTimeoutThreshold: 1_000,
    })
    // Connection errors surface on the requests that meet them; the pool itself must not crash the process.
    this.pool.on('connectionError', () => {})
  }

  /** True when the upstream may take a new request now. */
  eligible(now: number): boolean {
    return this.healthy && !this.draining && this.ejectedUntil <= now
  }

  get ejected(): boolean {
    return this.ejectedUntil > this.#options.now()
  }

  /** The weight to balance with now: the configured weight, reduced during slow start. */
  effectiveWeight(now: number): number {
    const ms = this.#options.slowStartMs
    const since = now - Math.max(this.#rampFrom, this.ejectedUntil)
    if (ms <= 0 || since >= ms) return this.weight
    return this.weight * (SLOW_START_FLOOR + ((1 - SLOW_START_FLOOR) * Math.max(0, since)) / ms)
  }

  /** True while the upstream is still ramping up. */
  slowStarting(now: number): boolean {
    return this.effectiveWeight(now) < this.weight
  }

  /** Active health changed; coming up starts slow start. */
  setHealthy(healthy: boolean): void {
    if (healthy && !this.healthy) this.#rampFrom = this.#options.now()
    this.healthy = healthy
  }

  /** Ejects the upstream for a time that doubles with each ejection, up to `maxMs`. */
  eject(baseMs: number, maxMs: number): number {
    const ms = Math.min(maxMs, baseMs * 2 ** this.ejections)
    this.ejections++
    this.consecutiveFailures = 0
    this.ejectedUntil = this.#options.now() + ms
    return ms
  }

  /** Closes the pool once its in-flight requests are done (they are never cut by this). */
  async close(): Promise<void> {
    await this.pool.close().catch(() => {})
  }

  /** Cuts every connection at once. */
  async destroy(): Promise<void> {
    await this.pool.destroy().catch(() => {})
  }
}
