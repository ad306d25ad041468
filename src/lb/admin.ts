/**
 * The admin server, on its own port and never on the public one: `GET /metrics` (Prometheus text) and
 * `GET /status` (JSON: upstreams with health, ejection, in-flight and counts; discovery; retries).
 */
import http from 'node:http'
import net, { type AddressInfo, type Server as NetServer } from 'node:net'
import { FleetError, portTaken } from '../errors.js'
import { isLoopback, isLoopbackHost } from '../net/loopback.js'
import type { DiscoveryStatus } from './discovery.js'
import { AdminForbiddenError, NotFoundError } from './errors.js'
import type { LbMetrics } from './metrics.js'
import { sendError } from './respond.js'
import type { UpstreamSet } from './upstream-set.js'
import type { AdminExtensionFactory } from './view.js'

export interface StatusSource {
  upstreams: UpstreamSet
  metrics: LbMetrics
  discovery: () => DiscoveryStatus
  now: () => number
  instanceId: string
  closing: () => boolean
  retryBudgetPercent: number
  /** Served beside /metrics and /status (the dashboard, when it is on). */
  extension?: AdminExtensionFactory
  /** The data plane's name in /status (`node` when absent). */
  engine?: string
  /** More Prometheus text after Fleet's own (the HAProxy engine: HAProxy's exporter). */
  moreMetrics?: () => Promise<string>
}

/** The /status document. */
export async function statusDocument(src: StatusSource): Promise<Record<string, unknown>> {
  const now = src.now()
  const retries = await src.metrics.retries.get()
  const denied = await src.metrics.retriesDenied.get()
  return {
    instanceId: src.instanceId,
    engine: src.engine ?? 'node',
    strategy: src.upstreams.balancer.name,
    panic: src.upstreams.panic(now),
    closing: src.closing(),
    discovery: src.discovery(),
    clientConnections: src.metrics.clientConnections,
    inflight: src.upstreams.all().reduce((n, u) => n + u.inflight, 0),
    retries: Object.fromEntries(retries.values.map((v) => [String(v.labels.stage), v.value])),
    retriesDenied: denied.values[0]?.value ?? 0,
    upstreams: src.upstreams.all().map((u) => ({
      url: u.origin,
      eligible: u.eligible(now),
      healthy: u.healthy,
      draining: u.draining,
      ejected: u.ejectedUntil > now,
      ejectedUntil: u.ejectedUntil > now ? new Date(u.ejectedUntil).toISOString() : null,
      ejections: u.ejections,
      inflight: u.inflight,
      requests: u.requests,
      failures: u.failures,
      consecutiveFailures: u.consecutiveFailures,
      weight: u.weight,
      effectiveWeight: Number(u.effectiveWeight(now).toFixed(3)),
    })),
  }
}

/**
 * Starts the admin server on `hosts` (one address, or several comma-separated, each on the same port;
 * 0.0.0.0 or :: for every interface) and `port` (0: a free port); resolves once it listens on all.
 */
export async function startAdminServer(src: StatusSource, hosts: string, port: number): Promise<http.Server> {
  const dashboard = src.extension?.(src)
  const addresses = hosts
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean)
  const host = addresses.join(', ')
  // Bound to loopback only (the default), it answers only requests that name this machine so: a browser page
  // whose DNS name rebinds to 127.0.0.1 sends its own name as Host and is refused (DNS rebinding).
  const loopbackOnly = addresses.every((h) => h === 'localhost' || isLoopback(h))
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
      res.end(body)
    }
    if (loopbackOnly && !isLoopbackHost(req.headers.host)) {
      const err = new AdminForbiddenError(
        `the admin port listens on ${host} and answers only a loopback Host (127.0.0.1, localhost, [::1]); this request named ${JSON.stringify(req.headers.host ?? '')}`,
      )
      sendError(res, err, undefined)
      return
    }
    const fail = (err: Error): void => sendError(res, new FleetError(err.message, { cause: err }), undefined)
    if (req.method === 'GET' && path === '/metrics') {
      Promise.all([src.metrics.registry.metrics(), src.moreMetrics?.() ?? ''])
        .then(([own, more]) => send(200, src.metrics.registry.contentType, more ? `${own}\n${more}` : own))
        .catch(fail)
    } else if (req.method === 'GET' && path === '/status') {
      statusDocument(src).then((doc) => send(200, 'application/json', JSON.stringify(doc, null, 2)), fail)
    } else if (dashboard && req.method === 'GET' && path === '/') {
      res.writeHead(302, { location: '/dashboard/' }).end()
    } else if (!dashboard?.handle(req, res, path)) {
      const endpoints = `GET /metrics, GET /status${dashboard ? ', GET /dashboard/' : ''}`
      sendError(res, new NotFoundError(`admin endpoints: ${endpoints}`), undefined)
    }
  })
  // Its event streams end with the server's connections; its sampler and store connections with the server.
  if (dashboard) server.once('close', () => void dashboard.close())
  server.keepAliveTimeout = 5_000
  const listen = (listener: NetServer, at: string, p: number) =>
    new Promise<void>((resolve, reject) => {
      const failed = (err: Error) =>
        reject(portTaken(err, p, 'FLEET_LB_ADMIN_PORT', `the LB's admin port on ${at}`))
      listener.once('error', failed)
      listener.listen(p, at, () => {
        listener.off('error', failed)
        resolve()
      })
    })
  const [first = '127.0.0.1', ...more] = addresses
  await listen(server, first, port)
  // Every further address: a listener on the same port whose connections the HTTP server serves; they
  // stop listening with it.
  const extra: NetServer[] = []
  server.once('close', () => {
    for (const x of extra) x.close()
  })
  try {
    for (const at of more) {
      const x = net.createServer((socket) => server.emit('connection', socket))
      extra.push(x)
      await listen(x, at, portOf(server))
    }
  } catch (err) {
    await new Promise((r) => server.close(r))
    throw err
  }
  return server
}

export function portOf(server: NetServer): number {
  return (server.address() as AddressInfo).port
}
