/**
 * Prometheus metrics per job type. Counters and durations are this process's own; the queue depths
 * (queued, active, delayed, failed) are read from Redis at scrape time, so any process shows the whole fleet.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { QueueSet } from './queues.js'

/** Longest a scrape waits for the queue counts (Prometheus' default scrape timeout is 10 s; the dashboard's tick 1 s). */
const SCRAPE_TIMEOUT_MS = 500

interface Series {
  finished: Counter.Internal
  duration: Histogram.Internal<'type' | 'outcome'>
}

export type Outcome = 'completed' | 'failed' | 'retried' | 'cancelled' | 'handed_back'

export class JobMetrics {
  readonly #finished: Counter<'type' | 'outcome'>
  readonly #duration: Histogram<'type' | 'outcome'>
  /** The labelled series of each `<type> <outcome>`, looked up once (observe() runs once per attempt). */
  readonly #series = new Map<string, Series>()

  constructor(registry: Registry, queues: QueueSet, types: readonly string[]) {
    this.#finished = new Counter({
      name: 'fleet_jobs_processed_total',
      help: 'Job attempts this process ended, by type and outcome.',
      labelNames: ['type', 'outcome'],
      registers: [registry],
    })
    this.#duration = new Histogram({
      name: 'fleet_job_duration_seconds',
      help: 'Duration of job attempts run by this process, by type and outcome.',
      labelNames: ['type', 'outcome'],
      buckets: [0.005, 0.025, 0.1, 0.25, 1, 2.5, 10, 30, 120, 600],
      registers: [registry],
    })
    new Gauge({
      name: 'fleet_jobs',
      help: 'Jobs in the queues (all workers), by type and state, read from Redis at scrape time.',
      labelNames: ['type', 'state'],
      registers: [registry],
      async collect() {
        await Promise.all(
          types.map(async (type) => {
            // Bounded: a hung store Redis must not hang the scrape (the last values stay).
            let timer: NodeJS.Timeout | undefined
            const counts = await Promise.race([
              queues
                .get(type)
                .getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed'),
              new Promise<undefined>((resolve) => {
                timer = setTimeout(() => resolve(undefined), SCRAPE_TIMEOUT_MS)
              }),
            ])
              .catch(() => undefined)
              .finally(() => clearTimeout(timer))
            if (!counts) return
            this.set({ type, state: 'queued' }, (counts.waiting ?? 0) + (counts.prioritized ?? 0))
            this.set({ type, state: 'active' }, counts.active ?? 0)
            this.set({ type, state: 'delayed' }, counts.delayed ?? 0)
            this.set({ type, state: 'completed' }, counts.completed ?? 0)
            this.set({ type, state: 'failed' }, counts.failed ?? 0)
          }),
        )
      },
    })
  }

  /** Records one attempt's end. */
  observe(type: string, outcome: Outcome, seconds: number): void {
    const key = `${type} ${outcome}`
    let series = this.#series.get(key)
    if (!series) {
      const labels = { type, outcome }
      series = { finished: this.#finished.labels(labels), duration: this.#duration.labels(labels) }
      this.#series.set(key, series)
    }
    series.finished.inc()
    series.duration.observe(seconds)
  }
}
