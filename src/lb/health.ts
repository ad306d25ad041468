/**
 * Active health checks: every interval, GET `<upstream><path>` (default `/readyz`) on a connection of its
 * own (so a saturated pool does not fail its checks); 200-399 passes. `fall` failures in a row mark an
 * upstream down, `rise` passes mark it up again. A new upstream that starts down needs one pass.
 */
import { Agent, request } from 'undici'
import type { Logger } from '../log.js'
import type { Upstream } from './upstream.js'
import type { UpstreamSet } from './upstream-set.js'

export interface HealthOptions {
  path: string
  intervalMs: number
  timeoutMs: number
  fall: number
  rise: number
}

interface CheckState {
  passes: number
  fails: number
  running: boolean
  /** Never checked yet: the first pass is enough to come up. */
  first: boolean
}

export class HealthChecker {
  readonly #set: UpstreamSet
  readonly #options: HealthOptions
  readonly #logger: Logger
  readonly #state = new WeakMap<Upstream, CheckState>()
  readonly #agent: Agent
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor(set: UpstreamSet, options: HealthOptions, logger: Logger) {
    this.#set = set
    this.#options = options
    this.#logger = logger
    this.#agent = new Agent({
      connections: 1,
      pipelining: 1,
      connectTimeout: options.timeoutMs,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: Math.max(1000, Math.min(options.intervalMs * 2, 4000)),
    })
  }

  /** Checks every upstream now, then every interval. */
  start(): void {
    this.#tick()
    this.#timer = setInterval(() => this.#tick(), this.#options.intervalMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    await this.#agent.destroy().catch(() => {})
  }

  #tick(): void {
    for (const u of this.#set.all()) void this.check(u)
  }

  /** Runs one check of `u` (skipped while another is running) and applies its result. */
  async check(u: Upstream): Promise<void> {
    let st = this.#state.get(u)
    if (!st) {
      st = { passes: 0, fails: 0, running: false, first: true }
      this.#state.set(u, st)
    }
    if (st.running || this.#stopped) return
    st.running = true
    let ok = false
    let reason = ''
    try {
      const res = await request(`${u.origin}${this.#options.path}`, {
        dispatcher: this.#agent,
        headers: { 'user-agent': 'fleet-lb-health' },
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      })
      await res.body.dump()
      ok = res.statusCode >= 200 && res.statusCode < 400
      if (!ok) reason = `status ${res.statusCode}`
    } catch (err) {
      reason = (err as Error).message
    } finally {
      st.running = false
    }
    if (this.#stopped) return
    const first = st.first
    st.first = false
    if (ok) {
      st.fails = 0
      st.passes++
      if (!u.healthy && (first || st.passes >= this.#options.rise)) this.#set.setHealthy(u, true)
    } else {
      st.passes = 0
      st.fails++
      if (u.healthy && st.fails >= this.#options.fall) {
        this.#logger.warn({ upstream: u.origin, reason }, 'health check failed')
        this.#set.setHealthy(u, false)
      }
    }
  }
}
