/**
 * Takes the dashboard's snapshots: once per interval while a page is open (and for the history span after the
 * last one closed, so the charts are there when it comes back), never otherwise. Each tick reads every
 * source at once, each bounded by 80% of the interval, so a hung Redis or process costs one stale figure,
 * never a late tick; ticks never overlap. Holds only what the charts and rates need: a ring of chart points and
 * a few counter readings per process.
 */
import os from 'node:os'
import type { LbMetrics, LbView } from '../lb/view.js'
import type { Logger } from '../log.js'
import { connectRedis, type Redis } from '../redis/connect.js'
import { Registry, type RegistryEntry } from '../registry/registry.js'
import { assemble } from './assemble.js'
import { CACHE, HTTP, JOB, LB, reading, UPSTREAM } from './counters.js'
import { connected, JobQueues } from './jobs.js'
import type { DashboardOptions } from './options.js'
import { Scraper } from './scrape.js'
import {
  type ChartPoint,
  JOBS_WINDOW_MS,
  type Readings,
  type Snapshot,
  type SourceState,
} from './snapshot.js'
import { readCacheInfo, readSupervisor } from './stores.js'
import { CounterWindows } from './window.js'

/** Most processes scraped per tick (the rest are listed without figures). */
const MAX_SCRAPES = 64

type Outcome<T> = { ok: true; value: T } | { ok: false; error: string }

/** `p`, or its failure, within `ms`. */
async function bounded<T>(p: Promise<T>, ms: number): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, error: `no answer within ${ms} ms` }), ms)
  })
  try {
    return await Promise.race([
      p.then(
        (value): Outcome<T> => ({ ok: true, value }),
        (err: unknown): Outcome<T> => ({ ok: false, error: (err as Error)?.message ?? String(err) }),
      ),
      late,
    ])
  } finally {
    clearTimeout(timer)
  }
}

const metricSum = async (
  m: LbMetrics,
  name: string,
  keep: (l: Record<string, unknown>) => boolean = () => true,
) => {
  const got = await m.registry.getSingleMetric(name)?.get()
  return (got?.values ?? []).reduce((n, v) => (keep(v.labels) ? n + v.value : n), 0)
}

export class Sampler {
  readonly #lb: LbView
  readonly #options: DashboardOptions
  readonly #logger: Logger
  readonly #windows: CounterWindows
  readonly #scraper = new Scraper()
  readonly #history: ChartPoint[] = []
  readonly #listeners = new Set<(s: Snapshot) => void>()
  readonly #store: Redis | undefined
  readonly #cache: Redis | undefined
  readonly #registry: Registry | undefined
  readonly #jobs: JobQueues | undefined
  #registryKnown: RegistryEntry[] = []
  #storeLastOk: number | undefined
  #lbLes: number[] = []
  #latest: Snapshot | undefined
  #timer: NodeJS.Timeout | undefined
  #running = false
  #idleSince: number | undefined
  #tick: Promise<Snapshot> | undefined
  #first = true
  #closed = false

  constructor(lb: LbView, options: DashboardOptions, logger: Logger) {
    this.#lb = lb
    this.#options = options
    this.#logger = logger
    this.#windows = new CounterWindows(Math.max(JOBS_WINDOW_MS, 10_000) + options.intervalMs * 2)
    const timeout = Math.max(200, Math.floor(options.intervalMs * 0.8))
    const quiet = (what: string) => (err: Error) =>
      logger.debug({ err: err.message }, `dashboard: ${what} Redis error`)
    // Its own connections, failing fast: a dashboard must show that Redis is away, not wait for it.
    const extra = { commandTimeout: timeout, maxRetriesPerRequest: 0 }
    if (options.redisUrl) {
      this.#store = connectRedis(options.redisUrl, {
        name: 'fleet-dashboard',
        failFast: true,
        extra,
        onError: quiet('store'),
      })
      this.#registry = new Registry(this.#store, options.redisPrefix)
      this.#jobs = new JobQueues(this.#store, options.redisPrefix)
    }
    // Only the cache Redis it was given: the store Redis is no stand-in (its memory and evictions would be
    // shown as the cache's). Without one the page says "not configured" (fleet lb --cache-redis-url).
    if (options.cacheRedisUrl) {
      this.#cache = connectRedis(options.cacheRedisUrl, {
        name: 'fleet-dashboard-cache',
        failFast: true,
        extra,
        onError: quiet('cache'),
      })
    }
  }

  /** The store Redis connection (for actions), if one is configured. */
  get jobs(): JobQueues | undefined {
    return this.#jobs
  }

  /** The registry's web servers, workers and the other load balancers, as last read. */
  registryEntries(): readonly RegistryEntry[] {
    return this.#registryKnown
  }

  /** The web servers, workers and the other load balancers (this one is in the snapshot already). */
  async #readRegistry(registry: Registry): Promise<RegistryEntry[]> {
    const [web, workers, lbs] = await Promise.all([
      registry.list('web'),
      registry.list('worker'),
      registry.list('lb'),
    ])
    return [...web, ...workers, ...lbs.filter((e) => e.id !== this.#lb.instanceId)]
  }

  /** The load balancers in the registry now, this one too when it registered (none without a store Redis). */
  async loadBalancers(): Promise<RegistryEntry[]> {
    return this.#registry ? this.#registry.list('lb') : []
  }

  get latest(): Snapshot | undefined {
    return this.#latest
  }

  /** The chart points of the history span, oldest first. */
  history(): readonly ChartPoint[] {
    return this.#history
  }

  /** Calls `fn` with every snapshot until the returned function is called; sampling runs while anyone listens. */
  subscribe(fn: (s: Snapshot) => void): () => void {
    this.#listeners.add(fn)
    this.#idleSince = undefined
    if (!this.#running && !this.#closed) {
      this.#running = true
      this.#schedule(0)
    }
    return () => {
      this.#listeners.delete(fn)
      if (this.#listeners.size === 0) this.#idleSince = Date.now()
    }
  }

  /** One snapshot now (shared with a tick in progress). */
  sample(): Promise<Snapshot> {
    this.#tick ??= this.#read()
      .then((s) => {
        this.#latest = s
        return s
      })
      .finally(() => {
        this.#tick = undefined
      })
    return this.#tick
  }

  #schedule(delay: number): void {
    this.#timer = setTimeout(async () => {
      const started = Date.now()
      try {
        const s = await this.sample()
        for (const fn of this.#listeners) fn(s)
      } catch (err) {
        this.#logger.warn({ err }, 'dashboard snapshot failed')
      }
      if (this.#closed) return
      if (this.#idleSince !== undefined && Date.now() - this.#idleSince > this.#options.historyMs) {
        this.#running = false
        return
      }
      this.#schedule(Math.max(0, this.#options.intervalMs - (Date.now() - started)))
    }, delay)
    this.#timer.unref()
  }

  async #read(): Promise<Snapshot> {
    const lb = this.#lb
    const o = this.#options
    const t = lb.now()
    const timeout = Math.max(200, Math.floor(o.intervalMs * 0.8))
    if (this.#first) {
      // The connections were opened with the sampler: give them one bounded wait before the first reading.
      this.#first = false
      await Promise.all([this.#store, this.#cache].map((r) => r && connected(r, timeout)))
      // And one registry read, so the first snapshot already scrapes every process.
      const first = this.#registry ? await bounded(this.#readRegistry(this.#registry), timeout) : undefined
      if (first?.ok) this.#registryKnown = first.value
    }
    const upstreams = lb.upstreams.all()
    // Scrape the processes known at the last tick (and this LB's upstreams), while the registry is read.
    const targets = new Map<string, string>()
    for (const e of this.#registryKnown) {
      // The other load balancers are scraped on their admin port (their public one serves no /metrics).
      const url = e.role === 'lb' ? e.adminUrl : e.url
      if (url && targets.size < MAX_SCRAPES) targets.set(e.id, url)
    }
    const registered = new Set(
      this.#registryKnown.filter((e) => e.url && e.role !== 'lb').map((e) => new URL(e.url as string).origin),
    )
    for (const u of upstreams)
      if (!registered.has(u.origin) && targets.size < MAX_SCRAPES) targets.set(u.origin, u.origin)
    const socket = o.controlSocket
    const [registry, supervisor, cacheInfo, jobs, scrapes, lbFig] = await Promise.all([
      this.#registry ? bounded(this.#readRegistry(this.#registry), timeout) : undefined,
      socket && o.readSupervisor
        ? bounded(readSupervisor(o.readSupervisor, socket, timeout), timeout)
        : undefined,
      this.#cache ? bounded(readCacheInfo(this.#cache), timeout) : undefined,
      this.#jobs ? bounded(this.#jobs.read(t), timeout) : undefined,
      Promise.all(
        [...targets].map(
          async ([id, url]) => [id, await bounded(this.#scraper.read(url, timeout), timeout)] as const,
        ),
      ),
      this.#readLb(),
    ])

    let store: SourceState | null = null
    if (registry) {
      if (registry.ok) {
        this.#registryKnown = registry.value
        this.#storeLastOk = t
        store = { ok: true, lastOkAt: t }
      } else store = { ok: false, error: registry.error, lastOkAt: this.#storeLastOk }
    }
    const win = this.#windows
    win.push('lb', t, lbFig.counters)
    const cpu = process.cpuUsage()
    win.push('lb:cpu', t, [(cpu.user + cpu.system) / 1e6])
    for (const u of upstreams)
      win.push(`up:${u.origin}`, t, reading(UPSTREAM, { requests: u.requests, failures: u.failures }))
    const scraped: Readings['scrapes'] = new Map()
    for (const [id, s] of scrapes) {
      if (!s.ok) {
        scraped.set(id, { error: s.error })
        continue
      }
      const m = s.value
      scraped.set(id, { reading: m })
      if (m.cpuSeconds !== undefined) win.push(`${id}:cpu`, t, [m.cpuSeconds])
      if (m.http) {
        const { requests, errors, buckets } = m.http
        win.push(`${id}:http`, t, reading(HTTP, { requests, errors }, buckets.counts))
      }
      if (m.cache) {
        const { hits, misses, stale, fills, bypass } = m.cache
        win.push(`${id}:cache`, t, reading(CACHE, { hits, misses, stale, fills, bypass }))
      }
      for (const [type, j] of Object.entries(m.jobs)) {
        const { completed, failed, retried, buckets } = j
        win.push(`${id}:job:${type}`, t, reading(JOB, { completed, failed, retried }, buckets.counts))
      }
    }
    if (cacheInfo?.ok) win.push('cache-redis', t, [cacheInfo.value.evictedKeys])
    win.prune(t)

    const discovery = lb.discovery()
    const now = t
    const snapshot = assemble(
      {
        t,
        intervalMs: o.intervalMs,
        lb: {
          instanceId: lb.instanceId,
          closing: lb.closing(),
          connections: lb.metrics.clientConnections,
          inflight: upstreams.reduce((n, u) => n + u.inflight, 0),
          panic: lb.upstreams.panic(now),
          noUpstream: lb.upstreams.eligible(now).length === 0,
          eligible: upstreams.filter((u) => u.eligible(now)).length,
          upstreams: upstreams.length,
          discovery: {
            source: discovery.source,
            lastOkAt: discovery.lastOkAt,
            lastError: discovery.lastError,
          },
          pid: process.pid,
          host: os.hostname(),
          uptimeS: process.uptime(),
          rssBytes: process.memoryUsage.rss(),
          retryBudgetPercent: lb.retryBudgetPercent,
        },
        upstreams: upstreams.map((u) => ({
          origin: u.origin,
          healthy: u.healthy,
          eligible: u.eligible(now),
          draining: u.draining,
          ejectedUntil: u.ejectedUntil,
          ejections: u.ejections,
          inflight: u.inflight,
          requests: u.requests,
          failures: u.failures,
        })),
        registry: this.#registryKnown,
        store,
        supervisor:
          supervisor === undefined
            ? null
            : supervisor.ok
              ? supervisor.value
                ? { report: supervisor.value, state: { ok: true, lastOkAt: t } }
                : null
              : { state: { ok: false, error: supervisor.error } },
        cacheRedis: cacheInfo
          ? cacheInfo.ok
            ? { info: cacheInfo.value, state: { ok: true, lastOkAt: t } }
            : { state: { ok: false, error: cacheInfo.error } }
          : null,
        jobs: jobs?.ok ? jobs.value : null,
        scrapes: scraped,
        actions: { retry: this.#jobs !== undefined, token: o.token !== undefined },
      },
      win,
      this.#lbLes,
    )
    this.#history.push(snapshot.point)
    const keep = Math.min(3600, Math.ceil(o.historyMs / o.intervalMs))
    if (this.#history.length > keep) this.#history.splice(0, this.#history.length - keep)
    return snapshot
  }

  /** The LB's counters as one reading of layout LB (counters.ts); keeps its duration buckets' bounds in #lbLes. */
  async #readLb(): Promise<{ counters: number[] }> {
    const m = this.#lb.metrics
    const [requests, errors, retries, retriesDenied, noUpstream, duration] = await Promise.all([
      metricSum(m, 'fleet_lb_requests_total'),
      metricSum(m, 'fleet_lb_requests_total', (l) => String(l.code).startsWith('5')),
      metricSum(m, 'fleet_lb_retries_total'),
      metricSum(m, 'fleet_lb_retries_denied_total'),
      metricSum(m, 'fleet_lb_errors_total', (l) => l.code === 'FLEET_E_LB_NO_UPSTREAM'),
      m.registry.getSingleMetric('fleet_lb_request_duration_seconds')?.get(),
    ])
    const buckets = (duration?.values ?? []).filter((v) =>
      (v as { metricName?: string }).metricName?.endsWith('_bucket'),
    )
    const les = buckets.map((b) => (b.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(b.labels.le)))
    const order = les.map((_, i) => i).sort((a, b) => les[a] - les[b])
    this.#lbLes = order.map((i) => les[i])
    const counts = order.map((i) => buckets[i].value)
    return { counters: reading(LB, { requests, errors, retries, retriesDenied, noUpstream }, counts) }
  }

  /** Stops sampling and closes the connections. */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#running = false
    this.#listeners.clear()
    await this.#tick?.catch(() => {})
    await this.#jobs?.close()
    this.#store?.disconnect()
    this.#cache?.disconnect()
    await this.#scraper.close()
  }
}
