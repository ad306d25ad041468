/**
 * The sync loop of the `haproxy` engine: every SYNC_INTERVAL_MS, and at once on a change of membership, it
 * mirrors the control plane's UpstreamSet into HAProxy through the runtime API (add, drain, remove servers:
 * no reload) and reads HAProxy's view back into the set and the metrics (health, requests in flight, counts).
 */
import type { Logger } from '../../log.js'
import type { StartOptions } from '../control-plane.js'
import type { LbMetrics } from '../metrics.js'
import type { Upstream } from '../upstream.js'
import type { UpstreamSet } from '../upstream-set.js'
import { serverKeywords, serverName, serverOf } from './config.js'
import type { RuntimeApi } from './runtime.js'

/** How often the control plane and HAProxy are brought in step. */
export const SYNC_INTERVAL_MS = 200

/**
 * Brings HAProxy in step with the UpstreamSet (servers added, drained, removed) and the set in step with
 * HAProxy (health, in flight, counts); one pass at a time.
 */
export class Sync {
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #again: Promise<void> | undefined
  #stopped = false
  /** Servers this side put in drain (HAProxy's DRAIN also comes from a weight of 0). */
  #drained = new Set<string>()
  /** Servers leaving: since when (their sessions get until the shutdown timeout). */
  #leaving = new Map<string, number>()
  /**
   * Servers whose health was set full: HAProxy starts a server at the lowest "up" health, where one failed
   * check takes it down; the Node engine takes FLEET_LB_HEALTH_FALL failures in a row, and so does this one.
   */
  #primed = new Set<string>()
  /** Last totals read, for the counters' increments. */
  #last = new Map<string, number>()

  constructor(
    readonly api: RuntimeApi,
    readonly upstreams: UpstreamSet,
    readonly metrics: LbMetrics,
    readonly options: StartOptions,
    readonly logger: Logger,
  ) {}

  start(): void {
    const tick = (): void => {
      this.#timer = setTimeout(() => {
        void this.run().finally(() => {
          if (!this.#stopped) tick()
        })
      }, SYNC_INTERVAL_MS)
      this.#timer.unref()
    }
    tick()
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }

  /** A reload started a worker from the config: its servers are the config's, none drained. */
  reloaded(): void {
    this.#drained.clear()
    this.#primed.clear()
  }

  /** One pass; asked during a pass, another follows it (a change must not wait for the next tick). */
  run(): Promise<void> {
    if (this.#running) {
      this.#again ??= this.#running.then(() => {
        this.#again = undefined
        return this.run()
      })
      return this.#again
    }
    this.#running = this.#pass()
      .catch((err: Error) => this.logger.warn({ err: err.message }, 'haproxy sync failed; retrying'))
      .finally(() => {
        this.#running = undefined
      })
    return this.#running
  }

  async #pass(): Promise<void> {
    const rows = await this.api.stats()
    const servers = new Map<string, Record<string, string>>()
    for (const r of rows) if (r.pxname === 'web' && r.svname !== 'BACKEND') servers.set(r.svname, r)
    const wanted = new Set<string>()
    for (const u of this.upstreams.all()) {
      const name = serverName(u.origin)
      wanted.add(name)
      const row = servers.get(name)
      if (!row) {
        await this.#add(u, name)
        continue
      }
      this.#leaving.delete(name)
      // Trusted up as the Node engine trusts it (a static URL, a ready server), even if a first check
      // already failed; this pass's reading is older than that, so it is not mirrored this time. A drain
      // still applies at once: the server may have begun draining since the config was written.
      const priming = !this.#primed.has(name) && u.healthy
      if (!this.#primed.has(name)) {
        this.#primed.add(name)
        if (priming) await this.api.run(`set server web/${name} health up`)
      }
      if (u.draining && !this.#drained.has(name)) {
        await this.api.run(`set server web/${name} state drain`)
        this.#drained.add(name)
      } else if (!u.draining && this.#drained.has(name)) {
        await this.api.run(`set server web/${name} state ready`)
        this.#drained.delete(name)
      }
      if (!priming) this.#mirror(u, row)
    }
    for (const [name, row] of servers) if (!wanted.has(name)) await this.#remove(name, row)
    this.#count(rows)
  }

  async #add(u: Upstream, name: string): Promise<void> {
    const s = serverOf(u)
    await this.api.run(
      `add server web/${name} ${s.host}:${s.port} ${serverKeywords(this.options, s.weight)}`,
      'New server registered',
    )
    await this.api.run(`enable health web/${name}`)
    if (u.draining) {
      await this.api.run(`set server web/${name} state drain`)
      this.#drained.add(name)
    } else if (u.healthy) {
      await this.api.run(`enable server web/${name}; set server web/${name} health up`)
      this.#primed.add(name)
    } else {
      // Not ready yet (registered as starting): down until its checks pass, as in the Node engine. Enabling
      // marks it up, so both go in one request, run back to back by HAProxy.
      await this.api.run(`enable server web/${name}; set server web/${name} health down`)
      this.#primed.add(name)
    }
    this.logger.info({ upstream: u.origin, server: name }, 'haproxy: server added')
  }

  /** Out of rotation at once; deleted once its sessions ended (or cut after the shutdown timeout). */
  async #remove(name: string, row: Record<string, string>): Promise<void> {
    const since = this.#leaving.get(name) ?? Date.now()
    if (!this.#leaving.has(name)) {
      this.#leaving.set(name, since)
      await this.api.run(`set server web/${name} state maint`)
    }
    const busy = Number(row.scur) > 0
    if (busy && Date.now() - since < this.options.shutdownTimeoutMs) return
    if (busy) await this.api.run(`shutdown sessions server web/${name}`)
    await this.api.run(`del server web/${name}`, 'Server deleted')
    this.#leaving.delete(name)
    this.#drained.delete(name)
    this.#primed.delete(name)
    this.logger.info({ server: name }, 'haproxy: server removed')
  }

  /** HAProxy's view of one server into the model: health, in flight, counts. */
  #mirror(u: Upstream, row: Record<string, string>): void {
    const status = row.status ?? ''
    // UP, UP 1/2 (going down), DRAIN (up, no new sessions), NOLB; DOWN, DOWN 1/2 (coming up), MAINT.
    const up = status.startsWith('UP') || status === 'DRAIN' || status === 'NOLB' || status === 'no check'
    if (up !== u.healthy) this.upstreams.setHealthy(u, up)
    u.inflight = Number(row.scur) || 0
    u.requests = Number(row.stot) || 0
    u.failures = (Number(row.eresp) || 0) + (Number(row.econ) || 0)
  }

  /** The frontend's answers by class and the backend's retries into Fleet's counters (increments). */
  #count(rows: Record<string, string>[]): void {
    const front = rows.find((r) => r.pxname === 'public' && r.svname === 'FRONTEND')
    const back = rows.find((r) => r.pxname === 'web' && r.svname === 'BACKEND')
    if (front) {
      this.metrics.clientConnections = Number(front.scur) || 0
      for (const cls of ['1xx', '2xx', '3xx', '4xx', '5xx']) {
        this.metrics.countRequests(cls, this.#delta(`req:${cls}`, Number(front[`hrsp_${cls}`]) || 0))
      }
    }
    if (back) {
      const retries = (Number(back.wretr) || 0) + (Number(back.wredis) || 0)
      const d = this.#delta('retries', retries)
      if (d > 0) this.metrics.retries.labels('haproxy').inc(d)
    }
  }

  /** The increase since the last reading (a reload resets HAProxy's counters: the new total then). */
  #delta(key: string, total: number): number {
    const last = this.#last.get(key) ?? 0
    this.#last.set(key, total)
    return total >= last ? total - last : total
  }
}
