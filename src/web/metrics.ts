/** The web server's request duration histogram (the registry and its process metrics: src/process/metrics.ts). */
import type { FastifyInstance } from 'fastify'
import { Histogram, type Registry } from 'prom-client'

/** Records every response in `http_request_duration_seconds{method,route,status_code}` and serves /metrics. */
export function registerHttpMetrics(app: FastifyInstance, registry: Registry): void {
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request received to response sent, by route template and status.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  // The series of each (method, route, status), bound once: labelling per request hashes the label set.
  const series = new Map<string, { observe(v: number): void }>()
  app.addHook('onResponse', (request, reply, done) => {
    // The route template, not the URL, so the label set stays bounded.
    const route = request.routeOptions.url ?? 'unmatched'
    const key = `${request.method} ${reply.statusCode} ${route}`
    let s = series.get(key)
    if (!s) {
      s = duration.labels({ method: request.method, route, status_code: String(reply.statusCode) })
      series.set(key, s)
    }
    s.observe(reply.elapsedTime / 1000)
    done()
  })
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('content-type', registry.contentType)
    return registry.metrics()
  })
}
