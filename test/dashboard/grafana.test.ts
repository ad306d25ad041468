/**
 * The Grafana dashboard (deploy/grafana/fleet.json) and the Prometheus example (deploy/prometheus/prometheus.yml)
 * name only metrics Fleet really exports: every metric in every PromQL expression is looked up in the
 * /metrics text of a real load balancer, a real web server running the shop, and a worker's job metrics.
 */
import fs from 'node:fs'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import shopApp from '../../apps/shop/index.js'
import { dashboardExtension, dashboardOptionsFromConfig } from '../../src/dashboard/index.js'
import { declaredMetrics, exportedNames } from '../../src/dashboard/prom-text.js'
import { JobMetrics } from '../../src/jobs/metrics.js'
import { QueueSet } from '../../src/jobs/queues.js'
import { type LoadBalancer, startLoadBalancer } from '../../src/lb/index.js'
import { createMetricsRegistry } from '../../src/process/metrics.js'
import { Registry } from '../../src/registry/registry.js'
import { type Backend, startBackend, testOptions } from '../lb/helpers.js'
import { createAppTest, type TestApp } from '../support/app.js'

const read = (p: string) => fs.readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8')

/** Every `expr` in a Grafana dashboard, however deep its panels nest. */
function expressions(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(expressions)
  if (node && typeof node === 'object') {
    return Object.entries(node).flatMap(([k, v]) =>
      k === 'expr' && typeof v === 'string' ? [v] : expressions(v),
    )
  }
  return []
}

const PROMQL_WORDS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'count',
  'topk',
  'bottomk',
  'rate',
  'irate',
  'increase',
  'histogram_quantile',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
])

/** The metric names of a PromQL expression: identifiers that are not functions, keywords, labels or durations. */
function metricNames(expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  return [...e.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)]
    .filter((m) => !m[2] && !PROMQL_WORDS.has(m[1]))
    .map((m) => m[1])
}

let web: TestApp
let backend: Backend
let lb: LoadBalancer
const exported = new Set<string>()

beforeAll(async () => {
  web = await createAppTest(shopApp)
  backend = await startBackend('a')
  lb = await startLoadBalancer({
    ...testOptions({ upstreams: [backend.url] }),
    logger: pino({ level: 'silent' }),
    adminExtension: dashboardExtension(
      { ...dashboardOptionsFromConfig(web.deps.config), controlSocket: undefined },
      pino({ level: 'silent' }),
    ),
  })
  // A worker's registry: its process metrics and its job metrics (the shop's types).
  const worker = createMetricsRegistry({ role: 'worker', instance: 'worker-test' })
  const queues = new QueueSet(web.deps.config, web.deps.redis)
  new JobMetrics(worker, queues, ['shop.thumbnails'])
  const texts = [
    await (await fetch(`http://127.0.0.1:${lb.adminPort}/metrics`)).text(),
    (await web.app.inject({ url: '/metrics' })).body,
    await worker.metrics(),
  ]
  await queues.close()
  for (const t of texts) for (const n of exportedNames(declaredMetrics(t))) exported.add(n)
})

afterAll(async () => {
  await lb?.close()
  await backend?.close()
  await web?.close()
})

describe('Grafana and Prometheus examples', () => {
  it('read metric names out of PromQL', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (instance, le) (rate(http_request_duration_seconds_bucket{role="web",route!~"/a|/b"}[1m])))',
      ),
    ).toEqual(['http_request_duration_seconds_bucket'])
    expect(metricNames('sum(rate(a_total[5m])) / (sum(rate(b_total[5m])) + c)')).toEqual([
      'a_total',
      'b_total',
      'c',
    ])
  })

  it('query only metrics that Fleet exports', () => {
    const dashboard = JSON.parse(read('deploy/grafana/fleet.json')) as { panels: unknown[]; uid: string }
    const exprs = expressions(dashboard)
    expect(exprs.length).toBeGreaterThan(20)
    const used = new Set(exprs.flatMap(metricNames))
    // The exports were read (a sanity check of the check).
    for (const n of [
      'fleet_lb_requests_total',
      'http_request_duration_seconds_bucket',
      'fleet_cache_hits_total',
      'fleet_jobs',
      'fleet_job_duration_seconds_bucket',
    ]) {
      expect(exported.has(n), n).toBe(true)
      expect(used.has(n), n).toBe(true)
    }
    const unknown = [...used].filter((n) => !exported.has(n))
    expect(unknown, 'names in deploy/grafana/fleet.json that no Fleet process exports').toEqual([])
  })

  it('scrape what the LB lists, in the format Prometheus HTTP service discovery reads', async () => {
    const yml = read('deploy/prometheus/prometheus.yml')
    const sd = /url: http:\/\/([^/\s]+)(\/\S+)/.exec(yml)
    const sdPath = sd?.[2]
    expect(sdPath).toBe('/dashboard/targets')
    // The LB's address comes from the environment (envsubst), never a fixed one.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: envsubst's placeholder, not a template
    expect(sd?.[1]).toBe('${FLEET_LB_ADMIN}')
    const settings = yml.replace(/#.*$/gm, '')
    expect(settings).not.toMatch(/\b\d+\.\d+\.\d+\.\d+:\d+/)
    const names = [...yml.matchAll(/\b([a-z_]+_(?:total|bytes|seconds|bucket))\b/g)].map((m) => m[1])
    expect(names.filter((n) => !exported.has(n))).toEqual([])
    await new Registry(web.deps.redis, web.deps.config.redisPrefix).announce(
      {
        id: 'web-sd',
        role: 'web',
        url: 'http://127.0.0.1:8123',
        host: 'h',
        pid: 1,
        state: 'ready',
        startedAt: Date.now(),
      },
      60_000,
    )
    await new Registry(web.deps.redis, web.deps.config.redisPrefix).announce(
      {
        id: 'lb-sd',
        role: 'lb',
        url: 'http://127.0.0.1:80',
        adminUrl: 'http://127.0.0.1:9123',
        host: 'h',
        pid: 1,
        state: 'ready',
        startedAt: Date.now(),
      },
      60_000,
    )
    const res = await fetch(`http://127.0.0.1:${lb.adminPort}${sdPath}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json')
    const groups = (await res.json()) as { targets: string[]; labels: Record<string, string> }[]
    expect(groups).toEqual([
      { targets: ['127.0.0.1:8123'], labels: { fleet_role: 'web', fleet_instance: 'web-sd' } },
      // A load balancer by its admin port, where its fleet_lb_* are.
      { targets: ['127.0.0.1:9123'], labels: { fleet_role: 'lb', fleet_instance: 'lb-sd' } },
    ])
    for (const g of groups) {
      expect(g.targets.every((t) => /^[^/]+:\d+$/.test(t))).toBe(true)
      expect(Object.keys(g.labels).every((k) => /^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k))).toBe(true)
    }
  })
})
