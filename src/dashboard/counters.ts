/**
 * The layouts of the counter series the sampler records each tick (CounterWindows keeps each reading as a
 * plain vector of numbers, so a delta or a restart check is one loop). A layout names each position: the
 * sampler writes a reading with `reading(layout, named values)`, assemble.ts reads `d[LAYOUT.name]`, and a
 * histogram's cumulative bucket counts follow from `LAYOUT.buckets` on (in the order of its `le` bounds).
 * A series of one counter (CPU seconds, the cache Redis's evictions) has no layout: its value is at 0.
 */

/** The load balancer's own series (`lb`): from its Prometheus registry. */
export const LB = { requests: 0, errors: 1, retries: 2, retriesDenied: 3, noUpstream: 4, buckets: 5 } as const

/** An upstream of this LB (`up:<origin>`): requests sent to it, and those that failed. */
export const UPSTREAM = { requests: 0, failures: 1 } as const

/** A process's HTTP requests (`<id>:http`): user requests, their 5xx, their duration histogram. */
export const HTTP = { requests: 0, errors: 1, buckets: 2 } as const

/** A process's cache reads (`<id>:cache`). */
export const CACHE = { hits: 0, misses: 1, stale: 2, fills: 3, bypass: 4 } as const

/** A process's runs of one job type (`<id>:job:<type>`): outcomes, then the duration histogram. */
export const JOB = { completed: 0, failed: 1, retried: 2, buckets: 3 } as const

type Layout = Readonly<Record<string, number>>
/** The named values of a layout's reading: one per name but `buckets`. */
type Values<L extends Layout> = Record<Exclude<keyof L, 'buckets'>, number>

/**
 * One reading in `layout`'s order, with a histogram's bucket counts after the named values.
 * @example reading(HTTP, { requests: 12, errors: 1 }, [8, 11, 12]) // [12, 1, 8, 11, 12]
 */
export function reading<L extends Layout>(
  layout: L,
  values: Values<L>,
  buckets: readonly number[] = [],
): number[] {
  const out: number[] = []
  for (const [name, i] of Object.entries(layout)) if (name !== 'buckets') out[i] = (values as Layout)[name]
  return [...out, ...buckets]
}

/** The number of named values of a layout (a cache sum's length). */
export function width(layout: Layout): number {
  return Object.keys(layout).filter((name) => name !== 'buckets').length
}
