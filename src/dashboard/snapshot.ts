/**
 * What one dashboard snapshot says (the JSON the page gets, each tick), and the readings of one tick it is
 * made from (assemble.ts puts one into the other).
 */
import type { RegistryEntry } from '../registry/registry.js'
import type { StatusReport } from '../stack/status.js'
import type { JobFailure, JobTypeCounts } from './jobs.js'
import type { ProcessReading } from './scrape.js'
import type { CacheRedisInfo } from './stores.js'

/** Green, amber, grey or red on the page. */
export type Health = 'up' | 'starting' | 'draining' | 'degraded' | 'down'

export interface ProcessRow {
  role: string
  id: string
  host?: string
  pid?: number
  /** The state as its source says it (registry, supervisor). */
  state: string
  health: Health
  /** Why it is not up, in words. */
  problem?: string
  restarts?: number
  uptimeS?: number
  rssBytes?: number
  cpuPercent?: number
}

export interface WebRow {
  id: string
  url: string
  health: Health
  problem?: string
  rps?: number
  p50Ms?: number
  p99Ms?: number
  errorsPerS?: number
  inflight?: number
  /** Share of the requests this LB sent over the window (0..1). */
  share?: number
  /** How this LB sees it; null when it is registered but not one of this LB's upstreams. */
  lb: {
    healthy: boolean
    eligible: boolean
    draining: boolean
    ejectedUntil: number | null
    ejections: number
  } | null
}

export interface LbFigures {
  instanceId: string
  closing: boolean
  connections: number
  inflight: number
  rps?: number
  errorsPerS?: number
  p50Ms?: number
  p99Ms?: number
  retriesPerS?: number
  retriesDeniedPerS?: number
  /** Retries in the budget's 10 s window, and how many it allows. */
  budget?: { used: number; allowed: number }
  panic: boolean
  /** No upstream may take a request: clients get 503 FLEET_E_LB_NO_UPSTREAM. */
  noUpstream: boolean
  noUpstreamPerS?: number
  eligible: number
  upstreams: number
  discovery: { source: string; lastOkAt?: number; lastError?: string }
}

export interface CacheFigures {
  /** hits / (hits + misses + stale) over the window, over every process. */
  hitRatio?: number
  hitsPerS?: number
  missesPerS?: number
  stalePerS?: number
  fillsPerS?: number
  bypassPerS?: number
  /** The worst breaker state over the processes. */
  breaker: 'closed' | 'half-open' | 'open' | 'unknown'
  /** Processes whose breaker is not closed. */
  breakerOpenOn: string[]
  redis?: CacheRedisInfo & { evictionsPerS?: number }
}

export interface JobTypeFigures extends JobTypeCounts {
  completedPerMin?: number
  failedPerMin?: number
  /** p99 of completed attempts over the last minute, from the workers' histograms. */
  p99Ms?: number
}

export interface SourceState {
  ok: boolean
  error?: string
  /** Epoch ms of the last good reading. */
  lastOkAt?: number
}

export interface Banner {
  level: 'error' | 'warn'
  text: string
}

/** One point of the charts: seconds since the epoch, then the plotted figures (null: no data). */
export interface ChartPoint {
  t: number
  rps: number | null
  errors: number | null
  p50: number | null
  p99: number | null
  hitRatio: number | null
  jobsDone: number | null
  jobsFailed: number | null
  /** Requests/s per web server. */
  web: Record<string, number>
}

export interface Snapshot {
  t: number
  intervalMs: number
  lb: LbFigures
  processes: ProcessRow[]
  web: WebRow[]
  cache: CacheFigures
  jobs: { types: JobTypeFigures[]; failures: JobFailure[] } | null
  sources: {
    store: SourceState | null
    cacheRedis: SourceState | null
    supervisor: SourceState | null
    scrapes: { ok: number; failed: { id: string; error: string }[] }
  }
  banners: Banner[]
  /** Whether the retry button works, and whether it needs the token. */
  actions: { retry: boolean; token: boolean }
  point: ChartPoint
}

/** How the LB's own upstream looks, as the snapshot needs it. */
export interface UpstreamView {
  origin: string
  healthy: boolean
  eligible: boolean
  draining: boolean
  ejectedUntil: number
  ejections: number
  inflight: number
  requests: number
  failures: number
}

/** Everything one tick read; a source that failed is `{ error }`. */
export interface Readings {
  t: number
  intervalMs: number
  lb: Omit<
    LbFigures,
    | 'rps'
    | 'errorsPerS'
    | 'p50Ms'
    | 'p99Ms'
    | 'retriesPerS'
    | 'retriesDeniedPerS'
    | 'budget'
    | 'noUpstreamPerS'
  > & {
    pid: number
    host: string
    uptimeS: number
    rssBytes: number
    retryBudgetPercent: number
  }
  upstreams: UpstreamView[]
  /** Registry entries (the last known ones while the store is away), web then worker. */
  registry: RegistryEntry[]
  store: SourceState | null
  supervisor: { report?: StatusReport; state: SourceState } | null
  cacheRedis: { info?: CacheRedisInfo; state: SourceState } | null
  jobs: { types: JobTypeCounts[]; failures: JobFailure[] } | null
  scrapes: Map<string, { reading?: ProcessReading; error?: string }>
  actions: Snapshot['actions']
}

/** Window of rates and latency quantiles; jobs (rarer) are taken over a minute. */
export const RATE_WINDOW_MS = 5_000
export const JOBS_WINDOW_MS = 60_000
