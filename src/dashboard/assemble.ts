/**
 * How one dashboard snapshot is put together from the readings of one tick: the LB's own state, the
 * registry, each process's /metrics, the cache Redis, the queues and the supervisor. Pure: no I/O, so the
 * rules (what is red, what a banner says) are tested without a fleet.
 */
import { RETRY_BUDGET_WINDOW_MS, retriesAllowed } from '../lb/view.js'
import type { StatusRow } from '../stack/status.js'
import { CACHE, HTTP, JOB, LB, UPSTREAM, width } from './counters.js'
import { histogramQuantile } from './prom-text.js'
import {
  type Banner,
  type CacheFigures,
  type ChartPoint,
  type Health,
  JOBS_WINDOW_MS,
  type JobTypeFigures,
  type LbFigures,
  type ProcessRow,
  RATE_WINDOW_MS,
  type Readings,
  type Snapshot,
  type WebRow,
} from './snapshot.js'
import type { CounterWindows } from './window.js'

type Rows = Map<string, StatusRow>

const ms = (s: number | undefined) => (s === undefined ? undefined : Math.round(s * 10_000) / 10)
const round = (n: number | undefined, digits = 2) =>
  n === undefined || !Number.isFinite(n) ? undefined : Number(n.toFixed(digits))

function quantilesOf(win: CounterWindows, key: string, les: readonly number[], offset: number) {
  const d = win.delta(key, RATE_WINDOW_MS)
  if (!d) return {}
  const counts = d.d.slice(offset)
  return { p50Ms: ms(histogramQuantile(0.5, les, counts)), p99Ms: ms(histogramQuantile(0.99, les, counts)) }
}

function supervisorHealth(row: StatusRow): { health: Health; problem?: string } {
  switch (row.state) {
    case 'ready':
      return { health: 'up' }
    case 'starting':
      return { health: 'starting', problem: 'starting' }
    case 'crashed':
      return { health: 'down', problem: `crashed (${row.lastExit ?? 'exited'})` }
    case 'backoff':
      return { health: 'down', problem: `crashed (${row.lastExit ?? 'exited'}), starting again soon` }
    default:
      return { health: 'draining', problem: row.state }
  }
}

const worse: Record<Health, number> = { up: 0, starting: 1, draining: 2, degraded: 3, down: 4 }

/** Turns one tick's readings (and the counters windows they were pushed into) into a snapshot. */

/** The LB's own figures (rates and quantiles over the window), with its banners. */
function lbFigures(r: Readings, win: CounterWindows, lbLes: readonly number[], banners: Banner[]): LbFigures {
  const lbRate = (i: number) => round(win.rate('lb', RATE_WINDOW_MS, i))
  const budgetDelta = win.delta('lb', RETRY_BUDGET_WINDOW_MS)
  const lb: LbFigures = {
    instanceId: r.lb.instanceId,
    closing: r.lb.closing,
    connections: r.lb.connections,
    inflight: r.lb.inflight,
    rps: lbRate(LB.requests),
    errorsPerS: lbRate(LB.errors),
    retriesPerS: lbRate(LB.retries),
    retriesDeniedPerS: lbRate(LB.retriesDenied),
    noUpstreamPerS: lbRate(LB.noUpstream),
    ...quantilesOf(win, 'lb', lbLes, LB.buckets),
    budget: budgetDelta
      ? {
          used: budgetDelta.d[LB.retries],
          allowed: Math.floor(retriesAllowed(budgetDelta.d[LB.requests], r.lb.retryBudgetPercent)),
        }
      : undefined,
    panic: r.lb.panic,
    noUpstream: r.lb.noUpstream,
    eligible: r.lb.eligible,
    upstreams: r.lb.upstreams,
    discovery: r.lb.discovery,
  }
  if (lb.closing) banners.push({ level: 'warn', text: `${lb.instanceId} is shutting down` })
  if (lb.noUpstream)
    banners.push({
      level: 'error',
      text: 'No web server can take requests: clients get 503 FLEET_E_LB_NO_UPSTREAM',
    })
  else if (lb.panic)
    banners.push({
      level: 'error',
      text: `Panic mode: only ${lb.eligible} of ${lb.upstreams} web servers are healthy, so the LB routes over all of them`,
    })
  if (lb.discovery.lastError)
    banners.push({
      level: 'warn',
      text: `The LB cannot read the registry (${lb.discovery.lastError}): it routes to the web servers it last knew`,
    })
  return lb
}

/** The web servers: the registry's, this LB's upstreams that are not in it, and supervised ones that left it. */
function webRows(r: Readings, win: CounterWindows, supRow: Rows, banners: Banner[]): WebRow[] {
  const now = r.t
  const sup = r.supervisor?.report
  const upstreamByOrigin = new Map(r.upstreams.map((u) => [u.origin, u]))
  const upRateOf = (origin: string) => win.rate(`up:${origin}`, RATE_WINDOW_MS, UPSTREAM.requests)
  const totalUpRate = r.upstreams.reduce((n, u) => n + (upRateOf(u.origin) ?? 0), 0)
  const webEntries = r.registry.filter((e) => e.role === 'web')
  const seenOrigins = new Set<string>()
  const web: WebRow[] = []
  const webOf = (id: string, url: string, state: string | undefined): WebRow => {
    const origin = safeOrigin(url)
    seenOrigins.add(origin)
    const u = upstreamByOrigin.get(origin)
    const scraped = r.scrapes.get(id)
    const s = supRow.get(id)
    let health: Health = 'up'
    let problem: string | undefined
    const set = (h: Health, p: string) => {
      if (worse[h] > worse[health]) {
        health = h
        problem = p
      }
    }
    if (s && s.state !== 'ready') {
      const sh = supervisorHealth(s)
      set(sh.health, sh.problem ?? s.state)
    }
    if (u && u.ejectedUntil > now)
      set('down', `ejected by the LB after failed requests, until ${isoTime(u.ejectedUntil)}`)
    else if (u && !u.healthy) set('down', 'failing its health checks (/readyz)')
    if (state === 'draining' || u?.draining) set('draining', 'draining')
    if (state === 'starting') set('starting', 'starting')
    if (scraped?.error && health === 'up') set('degraded', `no metrics: ${scraped.error}`)
    const upRate = u ? upRateOf(origin) : undefined
    const http = scraped?.reading?.http
    return {
      id,
      url,
      health,
      problem,
      rps: round(http ? win.rate(`${id}:http`, RATE_WINDOW_MS, HTTP.requests) : upRate),
      errorsPerS: round(http ? win.rate(`${id}:http`, RATE_WINDOW_MS, HTTP.errors) : undefined),
      ...(http ? quantilesOf(win, `${id}:http`, http.buckets.les, HTTP.buckets) : {}),
      inflight: u?.inflight,
      share: upRate !== undefined && totalUpRate > 0 ? round(upRate / totalUpRate, 3) : undefined,
      lb: u
        ? {
            healthy: u.healthy,
            eligible: u.eligible,
            draining: u.draining,
            ejectedUntil: u.ejectedUntil > now ? u.ejectedUntil : null,
            ejections: u.ejections,
          }
        : null,
    }
  }
  for (const e of webEntries) web.push(webOf(e.id, e.url ?? '', e.state))
  for (const u of r.upstreams) if (!seenOrigins.has(u.origin)) web.push(webOf(u.origin, u.origin, undefined))
  // A supervised web server whose entry is gone (crashed, not yet back) stays on the page, red.
  for (const row of sup?.rows ?? []) {
    if (row.role === 'web' && !web.some((w) => w.id === row.name)) {
      const sh = supervisorHealth(row)
      web.push({
        id: row.name,
        url: row.port ? `http://127.0.0.1:${row.port}` : '',
        health: sh.health === 'up' ? 'starting' : sh.health,
        problem: sh.problem ?? 'not in the registry',
        lb: null,
      })
    }
  }
  web.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }))
  for (const w of web)
    if (w.health === 'down') banners.push({ level: 'error', text: `${w.id} is down: ${w.problem}` })
  return web
}

/** This LB, the registry's web servers and workers, then the rest that the supervisor runs. */
function processRows(
  r: Readings,
  win: CounterWindows,
  web: WebRow[],
  supRow: Rows,
  banners: Banner[],
): ProcessRow[] {
  const now = r.t
  const sup = r.supervisor?.report
  const processes: ProcessRow[] = []
  const lbSup = supRow.get(r.lb.instanceId)
  processes.push({
    role: 'lb',
    id: r.lb.instanceId,
    host: r.lb.host,
    pid: r.lb.pid,
    state: r.lb.closing ? 'closing' : 'ready',
    health: r.lb.closing ? 'draining' : 'up',
    restarts: lbSup?.restarts,
    uptimeS: Math.round(r.lb.uptimeS),
    rssBytes: r.lb.rssBytes,
    cpuPercent: round((win.rate('lb:cpu', RATE_WINDOW_MS) ?? Number.NaN) * 100, 1),
  })
  const listed = new Set<string>([r.lb.instanceId])
  for (const e of r.registry) {
    listed.add(e.id)
    const s = supRow.get(e.id)
    const reading = r.scrapes.get(e.id)?.reading
    const w = web.find((x) => x.id === e.id)
    let health: Health =
      w?.health ?? (e.state === 'ready' ? 'up' : e.state === 'draining' ? 'draining' : 'starting')
    let problem = w?.problem
    if (!w && s && s.state !== 'ready') ({ health, problem } = supervisorHealth(s))
    if (!w && r.scrapes.get(e.id)?.error && health === 'up') {
      health = 'degraded'
      problem = `no metrics: ${r.scrapes.get(e.id)?.error}`
    }
    processes.push({
      role: e.role,
      id: e.id,
      host: e.host,
      pid: e.pid,
      state: s && s.state !== 'ready' ? s.state : e.state,
      health,
      problem,
      restarts: s?.restarts,
      // A process that did not answer this tick has no current memory or CPU (its last window is stale).
      uptimeS:
        health === 'down'
          ? undefined
          : Math.max(0, Math.round(now / 1000 - (reading?.startTime ?? e.startedAt / 1000))),
      rssBytes: reading?.rssBytes,
      cpuPercent: reading
        ? round((win.rate(`${e.id}:cpu`, RATE_WINDOW_MS) ?? Number.NaN) * 100, 1)
        : undefined,
    })
  }
  for (const row of sup?.rows ?? []) {
    if (listed.has(row.name)) continue
    const sh = supervisorHealth(row)
    processes.push({
      role: row.role,
      id: row.name,
      pid: row.pid,
      state: row.state,
      health: sh.health,
      problem: sh.problem,
      restarts: row.restarts,
      uptimeS: row.startedAt ? Math.round((now - row.startedAt) / 1000) : undefined,
      rssBytes: row.rss,
    })
    if (sh.health === 'down' && row.role !== 'web')
      banners.push({ level: 'error', text: `${row.name} is down: ${sh.problem}` })
  }
  return processes
}

/** The cache over every process that reports it, and the cache Redis. */
function cacheFigures(r: Readings, win: CounterWindows, banners: Banner[]): CacheFigures {
  const cache: CacheFigures = { breaker: 'unknown', breakerOpenOn: [] }
  let cacheSeen = false
  let worst = 0
  const sums = new Array<number>(width(CACHE)).fill(0)
  let haveRates = false
  for (const [id, sc] of r.scrapes) {
    const c = sc.reading?.cache
    if (!c) continue
    cacheSeen = true
    worst = Math.max(worst, c.breaker)
    if (c.breaker > 0) cache.breakerOpenOn.push(id)
    const d = win.delta(`${id}:cache`, RATE_WINDOW_MS)
    if (!d) continue
    haveRates = true
    d.d.forEach((x, i) => {
      sums[i] += x / d.seconds
    })
  }
  if (cacheSeen) cache.breaker = worst === 0 ? 'closed' : worst === 1 ? 'half-open' : 'open'
  if (haveRates) {
    const hits = sums[CACHE.hits]
    const reads = hits + sums[CACHE.misses] + sums[CACHE.stale]
    Object.assign(cache, {
      hitsPerS: round(hits),
      missesPerS: round(sums[CACHE.misses]),
      stalePerS: round(sums[CACHE.stale]),
      fillsPerS: round(sums[CACHE.fills]),
      bypassPerS: round(sums[CACHE.bypass]),
      hitRatio: reads > 0 ? round(hits / reads, 4) : undefined,
    })
  }
  if (r.cacheRedis?.info) {
    cache.redis = { ...r.cacheRedis.info, evictionsPerS: round(win.rate('cache-redis', RATE_WINDOW_MS)) }
  }
  if (r.cacheRedis && !r.cacheRedis.state.ok)
    banners.push({
      level: 'error',
      text: `The cache Redis does not answer (${r.cacheRedis.state.error}): reads go to PostgreSQL, slower`,
    })
  if (cache.breaker === 'open')
    banners.push({
      level: 'warn',
      text: `Cache breaker open on ${cache.breakerOpenOn.join(', ')}: those servers skip the cache`,
    })
  return cache
}

/** The queues' counts, with throughput and p99 from the workers' own histograms. */
function jobFigures(r: Readings, win: CounterWindows): Snapshot['jobs'] {
  let jobs: Snapshot['jobs'] = null
  if (r.jobs) {
    const types: JobTypeFigures[] = r.jobs.types.map((t) => {
      let done = 0
      let failed = 0
      let seconds = 0
      let les: readonly number[] | undefined
      let counts: number[] | undefined
      for (const [id, sc] of r.scrapes) {
        const j = sc.reading?.jobs[t.type]
        if (!j) continue
        const d = win.delta(`${id}:job:${t.type}`, JOBS_WINDOW_MS)
        if (!d) continue
        seconds = Math.max(seconds, d.seconds)
        done += d.d[JOB.completed]
        failed += d.d[JOB.failed]
        const b = d.d.slice(JOB.buckets)
        if (!counts) {
          les = j.buckets.les
          counts = b
        } else if (counts.length === b.length) counts = counts.map((x, i) => x + b[i])
      }
      return {
        ...t,
        completedPerMin: seconds > 0 ? round((done / seconds) * 60, 1) : undefined,
        failedPerMin: seconds > 0 ? round((failed / seconds) * 60, 1) : undefined,
        p99Ms: les && counts ? ms(histogramQuantile(0.99, les, counts)) : undefined,
      }
    })
    jobs = { types, failures: r.jobs.failures }
  }
  return jobs
}

/** Turns one tick's readings (and the counters windows they were pushed into) into a snapshot. */
export function assemble(r: Readings, win: CounterWindows, lbLes: readonly number[]): Snapshot {
  const now = r.t
  const banners: Banner[] = []
  const supRow: Rows = new Map(r.supervisor?.report?.rows.map((row) => [row.name, row]) ?? [])
  const lb = lbFigures(r, win, lbLes, banners)
  const web = webRows(r, win, supRow, banners)
  const processes = processRows(r, win, web, supRow, banners)
  const cache = cacheFigures(r, win, banners)
  const jobs = jobFigures(r, win)
  if (r.store && !r.store.ok)
    banners.unshift({
      level: 'error',
      text: `The store Redis does not answer (${r.store.error}): processes are shown as last seen${r.store.lastOkAt ? ` at ${isoTime(r.store.lastOkAt)}` : ''}, queues are unknown, and sessions and job submissions fail`,
    })
  if (r.supervisor && !r.supervisor.state.ok)
    banners.push({
      level: 'warn',
      text: `fleet up's control socket does not answer (${r.supervisor.state.error}): restarts are unknown`,
    })
  const failedScrapes = [...r.scrapes]
    .filter(([, s]) => s.error)
    .map(([id, s]) => ({ id, error: s.error ?? '' }))

  const jobsDone = jobs?.types.reduce((n, t) => n + (t.completedPerMin ?? 0), 0)
  const jobsFailed = jobs?.types.reduce((n, t) => n + (t.failedPerMin ?? 0), 0)
  const point: ChartPoint = {
    t: Math.round(now / 1000),
    rps: lb.rps ?? null,
    errors: lb.errorsPerS ?? null,
    p50: lb.p50Ms ?? null,
    p99: lb.p99Ms ?? null,
    hitRatio: cache.hitRatio ?? null,
    jobsDone: jobsDone ?? null,
    jobsFailed: jobsFailed ?? null,
    web: Object.fromEntries(web.filter((w) => w.rps !== undefined).map((w) => [w.id, w.rps as number])),
  }
  return {
    t: now,
    intervalMs: r.intervalMs,
    lb,
    processes,
    web,
    cache,
    jobs,
    sources: {
      store: r.store,
      cacheRedis: r.cacheRedis?.state ?? null,
      supervisor: r.supervisor?.state ?? null,
      scrapes: { ok: r.scrapes.size - failedScrapes.length, failed: failedScrapes },
    },
    banners,
    actions: r.actions,
    point,
  }
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return url
  }
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19)
}
