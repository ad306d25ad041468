/**
 * Reading the Prometheus text exposition format (version 0.0.4, what prom-client writes) and the two sums
 * the dashboard takes of it: rates of counters between two readings and quantiles of histogram buckets.
 * Only the samples a caller asks for are parsed (a web server's /metrics is mostly series it does not show).
 */

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The metric names declared by `# TYPE` lines, with their type (histograms also export _bucket, _sum, _count). */
export function declaredMetrics(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const m of text.matchAll(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/gm)) out.set(m[1], m[2])
  return out
}

/** Every name a scrape of `declared` may show: each metric, and _bucket/_sum/_count of histograms and summaries. */
export function exportedNames(declared: Map<string, string>): Set<string> {
  const out = new Set<string>()
  for (const [name, type] of declared) {
    out.add(name)
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(name + s)
    if (type === 'summary') for (const s of ['_sum', '_count']) out.add(name + s)
  }
  return out
}

const UNESCAPE: Record<string, string> = { '\\\\': '\\', '\\"': '"', '\\n': '\n' }

/** `a="x",b="y \"z\""` into `{ a: 'x', b: 'y "z"' }`, scanned by hand: it runs for every kept line. */
function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {}
  let i = 0
  while (i < text.length) {
    const eq = text.indexOf('="', i)
    if (eq < 0) break
    let k = i
    while (k < eq && (text.charCodeAt(k) === 44 /* , */ || text.charCodeAt(k) === 32)) k++
    const key = text.slice(k, eq)
    const start = eq + 2
    let j = start
    for (;;) {
      const q = text.indexOf('"', j)
      if (q < 0) return labels
      let slashes = 0
      for (let b = q - 1; b >= start && text.charCodeAt(b) === 92 /* \ */; b--) slashes++
      if (slashes % 2 === 0) {
        const raw = text.slice(start, q)
        labels[key] = raw.includes('\\') ? raw.replace(/\\[\\"n]/g, (e) => UNESCAPE[e] ?? e) : raw
        i = q + 1
        break
      }
      j = q + 1
    }
  }
  return labels
}

/**
 * The samples of `text` whose name `wanted` accepts. Comment lines, and lines of other names, cost a prefix
 * test each; a malformed line is skipped.
 * @example parseSamples(text, (n) => n.startsWith('process_'))
 */
export function parseSamples(text: string, wanted: (name: string) => boolean): Sample[] {
  const out: Sample[] = []
  let start = 0
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end < 0) end = text.length
    const line = text.slice(start, end)
    start = end + 1
    if (line.length === 0 || line.charCodeAt(0) === 35 /* # */) continue
    const brace = line.indexOf('{')
    const space = line.indexOf(' ')
    const nameEnd = brace >= 0 && brace < space ? brace : space
    if (nameEnd <= 0) continue
    const name = line.slice(0, nameEnd)
    if (!wanted(name)) continue
    let rest: string
    let labels: Record<string, string> = {}
    if (nameEnd === brace) {
      const close = line.lastIndexOf('}')
      if (close < brace) continue
      labels = parseLabels(line.slice(brace + 1, close))
      rest = line.slice(close + 1).trim()
    } else {
      rest = line.slice(space + 1).trim()
    }
    const raw = rest.split(' ')[0]
    const value = raw === '+Inf' ? Number.POSITIVE_INFINITY : raw === '-Inf' ? -Infinity : Number(raw)
    if (raw === '' || (Number.isNaN(value) && raw !== 'NaN')) continue
    out.push({ name, labels, value })
  }
  return out
}

/** Cumulative bucket counts of one histogram, in ascending `le` order (the last is +Inf). */
export interface Buckets {
  les: number[]
  counts: number[]
}

/** Sums `_bucket` samples by `le` (over every other label that `keep` accepts) into one histogram. */
export function sumBuckets(samples: readonly Sample[], keep: (s: Sample) => boolean = () => true): Buckets {
  const byLe = new Map<number, number>()
  for (const s of samples) {
    if (!keep(s)) continue
    const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le)
    if (Number.isNaN(le)) continue
    byLe.set(le, (byLe.get(le) ?? 0) + s.value)
  }
  const les = [...byLe.keys()].sort((a, b) => a - b)
  return { les, counts: les.map((le) => byLe.get(le) ?? 0) }
}

/**
 * The q-quantile of cumulative bucket counts, interpolated linearly inside the bucket as PromQL's
 * histogram_quantile does; undefined when there is no observation. A quantile in the +Inf bucket is the
 * highest finite bound.
 */
export function histogramQuantile(
  q: number,
  les: readonly number[],
  counts: readonly number[],
): number | undefined {
  const n = les.length
  if (n === 0) return undefined
  const total = counts[n - 1]
  if (!(total > 0)) return undefined
  const rank = q * total
  let i = 0
  while (i < n - 1 && counts[i] < rank) i++
  if (les[i] === Number.POSITIVE_INFINITY) return n >= 2 ? les[n - 2] : undefined
  const lower = i === 0 ? 0 : les[i - 1]
  const below = i === 0 ? 0 : counts[i - 1]
  const inBucket = counts[i] - below
  if (inBucket <= 0) return les[i]
  return lower + (les[i] - lower) * ((rank - below) / inBucket)
}
