/**
 * The dashboard's pure parts: reading Prometheus text, quantiles of buckets, rates over a window (counter
 * resets included), the checks of a retry's body, and the rules that make a web server red.
 */
import { describe, expect, it } from 'vitest'
import { assemble } from '../../src/dashboard/assemble.js'
import { CACHE, HTTP, JOB, LB, reading, UPSTREAM } from '../../src/dashboard/counters.js'
import { parseRetry } from '../../src/dashboard/http.js'
import {
  declaredMetrics,
  exportedNames,
  histogramQuantile,
  parseSamples,
  sumBuckets,
} from '../../src/dashboard/prom-text.js'
import { readProcessMetrics } from '../../src/dashboard/scrape.js'
import type { Readings } from '../../src/dashboard/snapshot.js'
import { CounterWindows } from '../../src/dashboard/window.js'
import { isLoopback, isLoopbackHost } from '../../src/net/loopback.js'

const TEXT = `# HELP http_request_duration_seconds Time
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/products",status_code="200"} 8
http_request_duration_seconds_bucket{le="0.01",method="GET",route="/api/products",status_code="200"} 9
http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/products",status_code="200"} 10
http_request_duration_seconds_count{method="GET",route="/api/products",status_code="200"} 10
http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/x",status_code="503"} 0
http_request_duration_seconds_bucket{le="0.01",method="GET",route="/api/x",status_code="503"} 2
http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/x",status_code="503"} 2
http_request_duration_seconds_count{method="GET",route="/api/x",status_code="503"} 2
http_request_duration_seconds_bucket{le="0.005",method="GET",route="/readyz",status_code="200"} 500
http_request_duration_seconds_bucket{le="0.01",method="GET",route="/readyz",status_code="200"} 500
http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/readyz",status_code="200"} 500
http_request_duration_seconds_count{method="GET",route="/readyz",status_code="200"} 500
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total{role="web",instance="web-1"} 12.5
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 104857600
# TYPE fleet_cache_hits_total counter
fleet_cache_hits_total{kind="query"} 90
fleet_cache_hits_total{kind="object"} 10
fleet_cache_misses_total{kind="query"} 5
# TYPE fleet_cache_breaker_state gauge
fleet_cache_breaker_state 2
# TYPE fleet_jobs_processed_total counter
fleet_jobs_processed_total{type="shop.thumbnails",outcome="completed"} 4
fleet_jobs_processed_total{type="shop.thumbnails",outcome="failed"} 1
# TYPE fleet_job_duration_seconds histogram
fleet_job_duration_seconds_bucket{le="0.1",type="shop.thumbnails",outcome="completed"} 3
fleet_job_duration_seconds_bucket{le="+Inf",type="shop.thumbnails",outcome="completed"} 4
weird_label{msg="a \\"quoted\\" \\\\ value, with } brace"} 1
`

describe('Prometheus text', () => {
  it('parses the samples asked for, labels with escapes included', () => {
    const s = parseSamples(TEXT, (n) => n === 'weird_label' || n === 'process_cpu_seconds_total')
    expect(s).toEqual([
      { name: 'process_cpu_seconds_total', labels: { role: 'web', instance: 'web-1' }, value: 12.5 },
      { name: 'weird_label', labels: { msg: 'a "quoted" \\ value, with } brace' }, value: 1 },
    ])
  })

  it('names every exported series of the declared metrics', () => {
    const names = exportedNames(declaredMetrics(TEXT))
    expect(names.has('http_request_duration_seconds_bucket')).toBe(true)
    expect(names.has('http_request_duration_seconds_count')).toBe(true)
    expect(names.has('process_cpu_seconds_total')).toBe(true)
    expect(names.has('fleet_job_duration_seconds_sum')).toBe(true)
    expect(names.has('not_there')).toBe(false)
  })

  it('takes quantiles as histogram_quantile does', () => {
    const b = sumBuckets(parseSamples(TEXT, (n) => n === 'http_request_duration_seconds_bucket'))
    expect(b.les).toEqual([0.005, 0.01, Number.POSITIVE_INFINITY])
    expect(b.counts).toEqual([508, 511, 512])
    // 100 observations: 50 up to 1 ms, 40 more up to 2 ms, 10 above.
    expect(histogramQuantile(0.5, [0.001, 0.002, Infinity], [50, 90, 100])).toBeCloseTo(0.001)
    expect(histogramQuantile(0.7, [0.001, 0.002, Infinity], [50, 90, 100])).toBeCloseTo(0.0015)
    expect(histogramQuantile(0.99, [0.001, 0.002, Infinity], [50, 90, 100])).toBe(0.002)
    expect(histogramQuantile(0.5, [0.001, Infinity], [0, 0])).toBeUndefined()
  })

  it('reads a process: user requests only (health checks left out), 5xx, cache, jobs', () => {
    const r = readProcessMetrics(TEXT)
    expect(r.cpuSeconds).toBe(12.5)
    expect(r.rssBytes).toBe(104857600)
    expect(r.http).toEqual({
      requests: 12,
      errors: 2,
      buckets: { les: [0.005, 0.01, Infinity], counts: [8, 11, 12] },
    })
    expect(r.cache).toMatchObject({ hits: 100, misses: 5, breaker: 2 })
    expect(r.jobs['shop.thumbnails']).toMatchObject({ completed: 4, failed: 1, buckets: { counts: [3, 4] } })
  })
})

describe('counter windows', () => {
  it('gives rates over the window and starts again at zero after a reset', () => {
    const w = new CounterWindows(60_000)
    w.push('a', 0, [0])
    w.push('a', 1000, [10])
    w.push('a', 2000, [30])
    expect(w.rate('a', 5000)).toBe(15)
    expect(w.rate('a', 1000)).toBe(20)
    w.push('a', 3000, [4]) // the process restarted
    expect(w.rate('a', 1000)).toBe(4)
    expect(w.rate('missing', 1000)).toBeUndefined()
    w.prune(200_000)
    expect(w.rate('a', 1000)).toBeUndefined()
  })
})

describe('counter layouts', () => {
  it('number the named counters 0..n-1, buckets after them, and write a reading by name', () => {
    for (const layout of [LB, UPSTREAM, HTTP, CACHE, JOB] as Record<string, number>[]) {
      const names = Object.keys(layout).filter((n) => n !== 'buckets')
      expect(names.map((n) => layout[n]).sort()).toEqual(names.map((_, i) => i))
      if ('buckets' in layout) expect(layout.buckets).toBe(names.length)
    }
    expect(reading(HTTP, { errors: 1, requests: 12 }, [8, 11, 12])).toEqual([12, 1, 8, 11, 12])
    expect(reading(UPSTREAM, { failures: 2, requests: 9 })).toEqual([9, 2])
  })
})

describe('retry body', () => {
  it('accepts a type and an id, and names what is wrong otherwise', () => {
    expect(parseRetry('{"type":"shop.thumbnails","id":"shop.thumbnails-1"}')).toEqual({
      type: 'shop.thumbnails',
      id: 'shop.thumbnails-1',
    })
    expect(() => parseRetry('nope')).toThrow(/not JSON/)
    expect(() => parseRetry('{"id":"1"}')).toThrow(/"type"/)
    expect(() => parseRetry('{"type":"a b","id":"1"}')).toThrow(/"type"/)
    expect(() => parseRetry('{"type":"a","id":""}')).toThrow(/"id"/)
    expect(() => parseRetry('null')).toThrow(/"type"/)
  })

  it('knows loopback addresses', () => {
    expect(isLoopback('127.0.0.1')).toBe(true)
    expect(isLoopback('::ffff:127.0.0.2')).toBe(true)
    expect(isLoopback('::1')).toBe(true)
    expect(isLoopback('10.0.0.1')).toBe(false)
    expect(isLoopback(undefined)).toBe(false)
    for (const h of ['127.0.0.1:9090', 'localhost', 'LOCALHOST:1', '[::1]:9090', '127.1.2.3'])
      expect(isLoopbackHost(h), h).toBe(true)
    for (const h of ['evil.example:9090', 'localhost.evil.example', '10.0.0.1', '', undefined])
      expect(isLoopbackHost(h), String(h)).toBe(false)
  })
})

describe('snapshot rules', () => {
  const base = (over: Partial<Readings> = {}): Readings => ({
    t: 100_000,
    intervalMs: 1000,
    lb: {
      instanceId: 'lb-1',
      closing: false,
      connections: 3,
      inflight: 0,
      panic: false,
      noUpstream: false,
      eligible: 1,
      upstreams: 2,
      discovery: { source: 'registry' },
      pid: 1,
      host: 'h',
      uptimeS: 10,
      rssBytes: 1,
      retryBudgetPercent: 20,
    },
    upstreams: [
      {
        origin: 'http://127.0.0.1:1',
        healthy: true,
        eligible: true,
        draining: false,
        ejectedUntil: 0,
        ejections: 0,
        inflight: 1,
        requests: 10,
        failures: 0,
      },
      {
        origin: 'http://127.0.0.1:2',
        healthy: false,
        eligible: false,
        draining: false,
        ejectedUntil: 0,
        ejections: 0,
        inflight: 0,
        requests: 5,
        failures: 5,
      },
    ],
    registry: [
      {
        id: 'web-1',
        role: 'web',
        url: 'http://127.0.0.1:1',
        host: 'h',
        pid: 2,
        state: 'ready',
        startedAt: 0,
        expiresAt: 1e15,
      },
      {
        id: 'web-2',
        role: 'web',
        url: 'http://127.0.0.1:2',
        host: 'h',
        pid: 3,
        state: 'ready',
        startedAt: 0,
        expiresAt: 1e15,
      },
    ],
    store: { ok: true },
    supervisor: null,
    cacheRedis: null,
    jobs: null,
    scrapes: new Map(),
    actions: { retry: true, token: false },
    ...over,
  })

  it('makes a server that fails its checks red, with a banner, and keeps a healthy one green', () => {
    const s = assemble(base(), new CounterWindows(60_000), [])
    expect(s.web.map((w) => [w.id, w.health])).toEqual([
      ['web-1', 'up'],
      ['web-2', 'down'],
    ])
    expect(s.web[1].problem).toMatch(/health checks/)
    expect(s.banners.map((b) => b.text)).toContain('web-2 is down: failing its health checks (/readyz)')
  })

  it('says when the store Redis is away, and keeps the processes it last saw', () => {
    const s = assemble(
      base({ store: { ok: false, error: 'Connection is closed.', lastOkAt: 90_000 } }),
      new CounterWindows(60_000),
      [],
    )
    expect(s.banners[0]).toMatchObject({ level: 'error' })
    expect(s.banners[0].text).toMatch(/store Redis does not answer \(Connection is closed\.\).*last seen at/)
    expect(s.processes.map((p) => p.id)).toEqual(['lb-1', 'web-1', 'web-2'])
  })

  it('shows a crashed supervised server that left the registry, red', () => {
    const report = {
      pid: 9,
      startedAt: 0,
      dataDir: '/d',
      urls: { app: '' },
      phase: 'running' as const,
      rows: [
        {
          role: 'web',
          name: 'web-3',
          pid: undefined,
          port: 3,
          state: 'backoff' as const,
          restarts: 2,
          startedAt: undefined,
          lastExit: 'signal SIGKILL',
          nextStartAt: 101_000,
          rss: undefined,
        },
      ],
    }
    const s = assemble(base({ supervisor: { report, state: { ok: true } } }), new CounterWindows(60_000), [])
    const w3 = s.web.find((w) => w.id === 'web-3')
    expect(w3).toMatchObject({ health: 'down' })
    expect(w3?.problem).toMatch(/SIGKILL/)
    expect(s.processes.find((p) => p.id === 'web-3')).toMatchObject({ health: 'down', restarts: 2 })
  })

  it('reads every counter of a reading by its name', () => {
    const win = new CounterWindows(60_000)
    const lb = { requests: 0, errors: 0, retries: 0, retriesDenied: 0, noUpstream: 0 }
    win.push('lb', 95_000, reading(LB, lb, [0, 0, 0]))
    win.push(
      'lb',
      100_000,
      reading(
        LB,
        { requests: 500, errors: 50, retries: 25, retriesDenied: 10, noUpstream: 5 },
        [0, 500, 500],
      ),
    )
    const cache = { hits: 40, misses: 5, stale: 5, fills: 3, bypass: 1 }
    win.push('web-1:cache', 95_000, reading(CACHE, { hits: 0, misses: 0, stale: 0, fills: 0, bypass: 0 }))
    win.push('web-1:cache', 100_000, reading(CACHE, cache))
    win.push('web-1:http', 95_000, reading(HTTP, { requests: 0, errors: 0 }, [0, 0]))
    win.push('web-1:http', 100_000, reading(HTTP, { requests: 50, errors: 5 }, [50, 50]))
    const http = {
      requests: 50,
      errors: 5,
      buckets: { les: [0.01, Number.POSITIVE_INFINITY], counts: [50, 50] },
    }
    const scrapes = new Map([['web-1', { reading: { jobs: {}, http, cache: { ...cache, breaker: 0 } } }]])
    const s = assemble(base({ scrapes }), win, [0.01, 0.1, Number.POSITIVE_INFINITY])
    expect(s.lb).toMatchObject({
      rps: 100,
      errorsPerS: 10,
      retriesPerS: 5,
      retriesDeniedPerS: 2,
      noUpstreamPerS: 1,
    })
    expect(s.lb.budget?.used).toBe(25)
    expect(s.web[0]).toMatchObject({ id: 'web-1', rps: 10, errorsPerS: 1 })
    expect(s.lb.p50Ms).toBe(55) // all 500 between 10 and 100 ms
    expect(s.cache).toMatchObject({
      hitsPerS: 8,
      missesPerS: 1,
      stalePerS: 1,
      fillsPerS: 0.6,
      bypassPerS: 0.2,
    })
    expect(s.cache.hitRatio).toBe(0.8)
  })

  it('says panic mode and no upstream in words', () => {
    const panic = assemble(base({ lb: { ...base().lb, panic: true } }), new CounterWindows(60_000), [])
    expect(panic.banners.some((b) => /Panic mode/.test(b.text))).toBe(true)
    const none = assemble(base({ lb: { ...base().lb, noUpstream: true } }), new CounterWindows(60_000), [])
    expect(none.banners.some((b) => /FLEET_E_LB_NO_UPSTREAM/.test(b.text))).toBe(true)
  })
})
