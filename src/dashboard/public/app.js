// The dashboard page: one EventSource on /dashboard/events, a `history` event for the charts, then a
// `snapshot` a tick. Every value is written with textContent (job messages come from apps and users).
import { Charts } from './charts.js'

const $ = (id) => document.getElementById(id)
let charts
let last = 0
let intervalMs = 1000

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v
    else if (k === 'style') e.style.cssText = v
    else if (k.startsWith('data-')) e.setAttribute(k, v)
    else e[k] = v
  }
  for (const c of children) if (c != null) e.append(c instanceof Node ? c : String(c))
  return e
}

const num = (v, digits = 1) =>
  v == null ? '-' : Number(v).toLocaleString('en', { maximumFractionDigits: digits })
const ms = (v) =>
  v == null ? '-' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString('en')
const pct = (v) => (v == null ? '-' : `${(v * 100).toFixed(1)}%`)
const bytes = (n) =>
  n == null
    ? '-'
    : n < 1024 ** 2
      ? `${Math.round(n / 1024)} KB`
      : n < 1024 ** 3
        ? `${Math.round(n / 1024 ** 2)} MB`
        : `${(n / 1024 ** 3).toFixed(1)} GB`
function dur(s) {
  if (s == null) return '-'
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`
}
const td = (v, cls) => el('td', cls ? { class: cls } : {}, v)
const dot = () => el('td', {}, el('span', { class: 'dot' }))

function fill(tbody, rows) {
  tbody.replaceChildren(...rows)
}

function banners(s, extra) {
  const list = [...extra, ...s.banners]
  $('banners').replaceChildren(...list.map((b) => el('div', { class: b.level }, b.text)))
}

function render(s) {
  last = Date.now()
  intervalMs = s.intervalMs
  const lb = s.lb
  $('lb-name').textContent = lb.instanceId
  $('updated').textContent = `updated ${new Date(s.t).toLocaleTimeString('en-GB')}`
  $('lb-rps').textContent = num(lb.rps)
  $('lb-5xx').textContent = num(lb.errorsPerS, 2)
  $('lb-5xx').classList.toggle('bad', (lb.errorsPerS ?? 0) > 0)
  $('lb-latency').textContent = `${ms(lb.p50Ms)} / ${ms(lb.p99Ms)} ms`
  $('lb-conns').textContent = num(lb.connections, 0)
  $('lb-inflight').textContent = num(lb.inflight, 0)
  $('lb-retries').textContent = num(lb.retriesPerS, 2)
  $('lb-budget').textContent = lb.budget ? `${lb.budget.used} / ${lb.budget.allowed}` : '-'
  $('lb-upstreams').textContent = `${lb.eligible} / ${lb.upstreams}${lb.panic ? ' PANIC' : ''}`
  $('lb-upstreams').classList.toggle('bad', lb.panic || lb.noUpstream)
  $('cache-ratio').textContent = pct(s.cache.hitRatio)
  $('jobs-waiting').textContent = s.jobs
    ? num(
        s.jobs.types.reduce((n, t) => n + t.waiting, 0),
        0,
      )
    : '-'
  $('token-box').hidden = !s.actions.token

  fill(
    $('web').tBodies[0],
    s.web.map((w) => {
      const view = w.lb
        ? w.lb.ejectedUntil
          ? `ejected (${w.lb.ejections}x)`
          : w.lb.draining
            ? 'draining'
            : w.lb.healthy
              ? w.lb.eligible
                ? 'healthy'
                : 'not eligible'
              : 'unhealthy'
        : 'not an upstream'
      const share =
        w.share == null
          ? '-'
          : el(
              'span',
              {},
              el('span', { class: 'bar', style: `width:${Math.round(w.share * 60)}px` }),
              pct(w.share),
            )
      return el(
        'tr',
        { class: `health-${w.health}`, 'data-web': w.id, 'data-health': w.health },
        dot(),
        td(w.id),
        td(num(w.rps), 'num'),
        td(ms(w.p50Ms), 'num'),
        td(ms(w.p99Ms), 'num'),
        td(num(w.errorsPerS, 2), 'num'),
        td(num(w.inflight, 0), 'num'),
        td(share),
        td(view),
        td(w.problem ?? '', 'wrap'),
      )
    }),
  )
  fill(
    $('processes').tBodies[0],
    s.processes.map((p) =>
      el(
        'tr',
        {
          class: `health-${p.health}`,
          'data-process': p.id,
          'data-health': p.health,
          title: p.problem ?? '',
        },
        dot(),
        td(p.role),
        td(p.id),
        td(p.host ?? '-'),
        td(p.pid ?? '-', 'num'),
        td(p.problem && p.health !== 'up' ? p.problem : p.state),
        td(p.restarts ?? '-', 'num'),
        td(dur(p.uptimeS), 'num'),
        td(bytes(p.rssBytes), 'num'),
        td(p.cpuPercent == null ? '-' : `${p.cpuPercent.toFixed(1)}%`, 'num'),
      ),
    ),
  )
  const c = s.cache
  const kv = (k, v, id) => el('tr', id ? { 'data-kv': id } : {}, td(k), td(v))
  // No cache Redis given to this LB: say so rather than show another Redis's figures.
  const cacheUnknown = s.sources.cacheRedis ? 'unknown' : 'not configured (fleet lb --cache-redis-url)'
  fill($('cache').tBodies[0], [
    kv('hit ratio', pct(c.hitRatio), 'hit-ratio'),
    kv('hits/s · misses/s', `${num(c.hitsPerS)} · ${num(c.missesPerS)}`),
    kv('fills/s · stale served/s', `${num(c.fillsPerS)} · ${num(c.stalePerS)}`),
    kv('bypassed/s', num(c.bypassPerS)),
    kv('breaker', c.breaker + (c.breakerOpenOn.length ? ` (${c.breakerOpenOn.join(', ')})` : ''), 'breaker'),
    kv(
      'cache Redis memory',
      c.redis
        ? `${bytes(c.redis.usedMemoryBytes)} of ${c.redis.maxMemoryBytes ? bytes(c.redis.maxMemoryBytes) : 'no limit'} (${c.redis.policy})`
        : cacheUnknown,
      'cache-redis',
    ),
    kv(
      'evictions',
      c.redis ? `${num(c.redis.evictionsPerS, 2)}/s, ${num(c.redis.evictedKeys, 0)} in all` : cacheUnknown,
    ),
  ])
  fill($('lb').tBodies[0], [
    kv('retries/s · refused by budget/s', `${num(lb.retriesPerS, 2)} · ${num(lb.retriesDeniedPerS, 2)}`),
    kv('panic mode', lb.panic ? 'ON' : 'off', 'panic'),
    kv('503 no upstream/s', num(lb.noUpstreamPerS, 2)),
    kv(
      'discovery',
      lb.discovery.source + (lb.discovery.lastError ? ` (error: ${lb.discovery.lastError})` : ''),
    ),
    kv(
      'store Redis',
      s.sources.store ? (s.sources.store.ok ? 'ok' : `away: ${s.sources.store.error}`) : 'not configured',
      'store',
    ),
    kv(
      'metrics scraped',
      `${s.sources.scrapes.ok} ok${s.sources.scrapes.failed.length ? `, failed: ${s.sources.scrapes.failed.map((f) => f.id).join(', ')}` : ''}`,
    ),
  ])
  const jobs = s.jobs
  fill(
    $('jobs').tBodies[0],
    (jobs?.types ?? []).map((t) =>
      el(
        'tr',
        { 'data-job-type': t.type },
        td(t.type),
        td(num(t.waiting, 0), 'num'),
        td(num(t.active, 0), 'num'),
        td(num(t.delayed, 0), 'num'),
        td(num(t.completed, 0), 'num'),
        td(num(t.failed, 0), 'num'),
        td(num(t.completedPerMin), 'num'),
        td(num(t.failedPerMin), 'num'),
        td(t.p99Ms == null ? '-' : `${ms(t.p99Ms)} ms`, 'num'),
      ),
    ),
  )
  fill(
    $('failures').tBodies[0],
    (jobs?.failures ?? []).map((f) => {
      const button =
        f.retryable && s.actions.retry
          ? el('button', { type: 'button', onclick: () => retry(f) }, 'Retry')
          : null
      return el(
        'tr',
        { 'data-failure': f.id },
        td(new Date(f.failedAt).toLocaleTimeString('en-GB')),
        td(f.type),
        td(f.id),
        td(f.code),
        td(f.message, 'wrap'),
        td(f.attempts, 'num'),
        el('td', {}, button),
      )
    }),
  )
  return s
}

async function retry(f) {
  const headers = { 'content-type': 'application/json' }
  const operator = $('operator').value.trim()
  if (operator) headers['x-fleet-operator'] = operator
  const token = $('token').value
  if (token) headers.authorization = `Bearer ${token}`
  const out = $('action-result')
  out.textContent = `retrying ${f.id}...`
  try {
    const res = await fetch('jobs/retry', {
      method: 'POST',
      headers,
      body: JSON.stringify({ type: f.type, id: f.id }),
    })
    const body = await res.json()
    out.textContent = res.ok
      ? `retried ${f.id} (it had ${body.retried.attemptsBefore} attempts)`
      : `not retried: ${body.error.message} [${body.error.code}]`
  } catch (err) {
    out.textContent = `not retried: ${err.message}`
  }
}

function start() {
  $('operator').value = localStorage.getItem('fleet-operator') ?? ''
  $('operator').addEventListener('change', () =>
    localStorage.setItem('fleet-operator', $('operator').value.trim()),
  )
  charts = new Charts(document)
  let snapshot
  let lost = false
  const conn = $('conn')
  const es = new EventSource('events')
  es.addEventListener('history', (e) => charts.load(JSON.parse(e.data), intervalMs))
  es.addEventListener('snapshot', (e) => {
    snapshot = render(JSON.parse(e.data))
    charts.add(snapshot.point)
    lost = false
    conn.textContent = 'live'
    conn.className = 'conn live'
    banners(snapshot, [])
  })
  es.onerror = () => {
    lost = true
    conn.textContent = 'reconnecting'
    conn.className = 'conn lost'
  }
  setInterval(() => {
    const age = Date.now() - last
    if (!snapshot) return
    if (lost || age > 3 * intervalMs) {
      banners(snapshot, [
        {
          level: 'error',
          text: `No news from the load balancer for ${Math.round(age / 1000)} s: the figures below are from ${new Date(last).toLocaleTimeString('en-GB')}; reconnecting`,
        },
      ])
      conn.className = 'conn lost'
    }
  }, 1000)
}

if (window.uPlot) start()
else window.addEventListener('DOMContentLoaded', start)
