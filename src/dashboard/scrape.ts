/**
 * One reading of a Fleet process's own /metrics (a web server or a worker): its CPU and memory, its HTTP
 * requests and their latency buckets, its cache counters and the jobs it ran. Only the figures the dashboard
 * shows are kept; the rest of the text is skipped unparsed.
 */
import { Agent, request } from 'undici'
import { type Buckets, parseSamples, type Sample, sumBuckets } from './prom-text.js'

/** Routes that are the fleet's own traffic (LB health checks, scrapes), not requests of users. */
const OWN_ROUTES = new Set(['/readyz', '/healthz', '/metrics'])

/** Largest /metrics body read (a bigger one is cut off and counted as a failed scrape). */
const MAX_BYTES = 8 * 1024 * 1024

export interface CacheCounters {
  hits: number
  misses: number
  stale: number
  fills: number
  bypass: number
  /** 0 closed, 1 half-open, 2 open. */
  breaker: number
}

export interface JobCounters {
  completed: number
  failed: number
  retried: number
  /** Durations of completed attempts. */
  buckets: Buckets
}

export interface ProcessReading {
  cpuSeconds?: number
  rssBytes?: number
  /** Epoch seconds. */
  startTime?: number
  /** Requests of users (health checks and scrapes left out), cumulative. */
  http?: { requests: number; errors: number; buckets: Buckets }
  cache?: CacheCounters
  jobs: Record<string, JobCounters>
}

const WANTED = [
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
  'process_start_time_seconds',
  'http_request_duration_seconds_bucket',
  'http_request_duration_seconds_count',
  'fleet_cache_',
  'fleet_jobs_processed_total',
  'fleet_job_duration_seconds_bucket',
]

const wanted = (name: string) => WANTED.some((w) => name.startsWith(w))

/** The figures of one /metrics text. */
export function readProcessMetrics(text: string): ProcessReading {
  const samples = parseSamples(text, wanted)
  const byName = new Map<string, Sample[]>()
  for (const s of samples) {
    let list = byName.get(s.name)
    if (!list) {
      list = []
      byName.set(s.name, list)
    }
    list.push(s)
  }
  const one = (name: string) => byName.get(name)?.[0]?.value
  const sum = (name: string, keep: (s: Sample) => boolean = () => true) =>
    (byName.get(name) ?? []).reduce((n, s) => (keep(s) ? n + s.value : n), 0)
  const users = (s: Sample) => !OWN_ROUTES.has(s.labels.route ?? '')
  const out: ProcessReading = {
    cpuSeconds: one('process_cpu_seconds_total'),
    rssBytes: one('process_resident_memory_bytes'),
    startTime: one('process_start_time_seconds'),
    jobs: {},
  }
  if (byName.has('http_request_duration_seconds_count')) {
    out.http = {
      requests: sum('http_request_duration_seconds_count', users),
      errors: sum(
        'http_request_duration_seconds_count',
        (s) => users(s) && /^5/.test(s.labels.status_code ?? ''),
      ),
      buckets: sumBuckets(byName.get('http_request_duration_seconds_bucket') ?? [], users),
    }
  }
  if (byName.has('fleet_cache_breaker_state')) {
    out.cache = {
      hits: sum('fleet_cache_hits_total'),
      misses: sum('fleet_cache_misses_total'),
      stale: sum('fleet_cache_stale_total'),
      fills: sum('fleet_cache_fills_total'),
      bypass: sum('fleet_cache_bypass_total'),
      breaker: one('fleet_cache_breaker_state') ?? 0,
    }
  }
  for (const s of byName.get('fleet_jobs_processed_total') ?? []) {
    const type = s.labels.type
    if (!type) continue
    out.jobs[type] ??= { completed: 0, failed: 0, retried: 0, buckets: { les: [], counts: [] } }
    const j = out.jobs[type]
    if (s.labels.outcome === 'completed') j.completed += s.value
    else if (s.labels.outcome === 'failed') j.failed += s.value
    else if (s.labels.outcome === 'retried') j.retried += s.value
  }
  const durations = byName.get('fleet_job_duration_seconds_bucket') ?? []
  for (const type of Object.keys(out.jobs)) {
    out.jobs[type].buckets = sumBuckets(
      durations,
      (s) => s.labels.type === type && s.labels.outcome === 'completed',
    )
  }
  return out
}

/** Reads processes' /metrics over keep-alive connections, one per process: a scrape a second opens none. */
export class Scraper {
  readonly #agent = new Agent({ connections: 1, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 4_000 })

  /** GETs `<url>/metrics` within `timeoutMs`; throws on a failed or late answer. */
  async read(url: string, timeoutMs: number): Promise<ProcessReading> {
    const res = await request(new URL('/metrics', url), {
      dispatcher: this.#agent,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    })
    if (res.statusCode !== 200) {
      await res.body.dump()
      throw new Error(`/metrics answered ${res.statusCode}`)
    }
    let text = ''
    for await (const chunk of res.body) {
      text += chunk
      if (text.length > MAX_BYTES) {
        res.body.destroy()
        throw new Error(`/metrics is over ${MAX_BYTES} bytes`)
      }
    }
    return readProcessMetrics(text)
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => {})
  }
}
