// The dashboard's small charts, drawn by uPlot (loaded from its npm package as window.uPlot). Each chart keeps
// columnar arrays of the last points the server sent; the server holds the history, the page only what it shows.

const COLORS = ['#4a90d9', '#d73027', '#1a9850', '#9b59b6', '#e67e22', '#16a085', '#7f8c8d', '#c0392b']

/** A time-series chart in `el` with one line per entry of `labels`. */
function chart(el, labels, { percent = false, colors = COLORS } = {}) {
  const opts = {
    width: Math.max(260, el.clientWidth || 300),
    height: 130,
    legend: { show: true, live: false },
    cursor: { show: true, drag: { x: false, y: false } },
    scales: {
      x: { time: true },
      y: percent ? { range: [0, 100] } : { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] },
    },
    axes: [
      { size: 28, grid: { width: 1, stroke: '#eee' } },
      { size: 46, grid: { width: 1, stroke: '#eee' } },
    ],
    series: [
      {},
      ...labels.map((label, i) => ({
        label,
        stroke: colors[i % colors.length],
        width: 1.5,
        spanGaps: false,
        points: { show: false },
      })),
    ],
  }
  const data = [[], ...labels.map(() => [])]
  const plot = new window.uPlot(opts, data, el)
  return { plot, data, labels }
}

export class Charts {
  #max = 300
  #charts = {}
  #webIds = []
  #points = []

  constructor(root) {
    this.root = root
    const $ = (id) => root.getElementById(id)
    this.#charts.rps = chart($('chart-rps'), ['req/s', '5xx/s'], { colors: ['#4a90d9', '#d73027'] })
    this.#charts.latency = chart($('chart-latency'), ['p50', 'p99'], { colors: ['#1a9850', '#e67e22'] })
    this.#charts.cache = chart($('chart-cache'), ['hit %'], { percent: true, colors: ['#9b59b6'] })
    this.#charts.jobs = chart($('chart-jobs'), ['done', 'failed'], { colors: ['#1a9850', '#d73027'] })
    this.#rebuildWeb([])
    window.addEventListener('resize', () => {
      for (const c of Object.values(this.#charts))
        c.plot.setSize({ width: Math.max(260, c.plot.root.parentElement.clientWidth), height: 130 })
    })
  }

  #rebuildWeb(ids) {
    this.#charts.web?.plot.destroy()
    this.#webIds = ids
    this.#charts.web = chart(this.root.getElementById('chart-web'), ids.length ? ids : ['-'])
  }

  /** Replaces every series with `points` (the server's history). */
  load(points, intervalMs) {
    this.#max = Math.max(60, Math.min(3600, points.length + 10, Math.ceil(300_000 / (intervalMs || 1000))))
    this.#points = []
    for (const p of points) this.#points.push(p)
    this.#redraw()
  }

  /** Adds one point. */
  add(point) {
    this.#points.push(point)
    if (this.#points.length > this.#max) this.#points.shift()
    this.#redraw()
  }

  #redraw() {
    const pts = this.#points
    const t = pts.map((p) => p.t)
    const col = (f) => pts.map((p) => p[f] ?? null)
    const set = (c, cols) => c.plot.setData([t, ...cols])
    set(this.#charts.rps, [col('rps'), col('errors')])
    set(this.#charts.latency, [col('p50'), col('p99')])
    set(this.#charts.cache, [pts.map((p) => (p.hitRatio == null ? null : p.hitRatio * 100))])
    set(this.#charts.jobs, [col('jobsDone'), col('jobsFailed')])
    const ids = [...new Set(pts.flatMap((p) => Object.keys(p.web ?? {})))]
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
      .slice(0, 8)
    if (ids.join() !== this.#webIds.join()) this.#rebuildWeb(ids)
    if (ids.length)
      set(
        this.#charts.web,
        ids.map((id) => pts.map((p) => p.web?.[id] ?? null)),
      )
  }
}
