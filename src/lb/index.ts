/**
 * Fleet's L7 HTTP/1.1 load balancer: pooled keep-alive connections to every upstream, a balancing strategy
 * per request, active and passive health, safe retries under a budget, drain and slow start, membership
 * from the registry (or fixed URLs), and the proxy duties of RFC 9110/9112. See docs/load-balancer.md.
 *
 * @example
 * const lb = await startLoadBalancer({ ...lbOptionsFromConfig(config), logger })
 * // ... lb.port, lb.adminPort
 * await lb.close()
 */
import http from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { ConfigMissingError } from '../config/errors.js'
import type { FleetError } from '../errors.js'
import { portTaken } from '../errors.js'
import type { Logger } from '../log.js'
import type { Registry } from '../registry/registry.js'
import { portOf, startAdminServer } from './admin.js'
import { createBalancer } from './balancer.js'
import { BodyBudget } from './body.js'
import { type Discovery, RegistryDiscovery, StaticDiscovery } from './discovery.js'
import {
  ClientTimeoutError,
  HeadersTooLargeError,
  MalformedRequestError,
  MethodNotAllowedError,
} from './errors.js'
import { HealthChecker } from './health.js'
import { LbMetrics } from './metrics.js'
import type { LoadBalancerOptions } from './options.js'
import { type ProxyContext, proxyRequest } from './proxy.js'
import { drainRequest, sendError, sendRawError } from './respond.js'
import { RETRY_MIN_PER_SECOND, RetryBudget } from './retry-budget.js'
import { proxyUpgrade } from './upgrade.js'
import { UpstreamSet } from './upstream-set.js'
import type { AdminExtensionFactory } from './view.js'

export { type LoadBalancerOptions, lbOptionsFromConfig } from './options.js'

export interface LoadBalancer {
  /** The public port (the OS-picked one when options.port was 0). */
  readonly port: number
  readonly adminPort: number
  /** The upstreams, their state and the balancer (for status views and tests). */
  readonly upstreams: UpstreamSet
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), closes the pools. */
  close(): Promise<void>
}

/** Starts the load balancer and resolves once both ports listen and the first discovery ran. */
export async function startLoadBalancer(
  options: LoadBalancerOptions & {
    logger: Logger
    registry?: Registry
    adminExtension?: AdminExtensionFactory
  },
): Promise<LoadBalancer> {
  const logger = options.logger.child({ component: 'lb' })
  const now = options.now ?? Date.now
  if (options.upstreams.length === 0 && !options.registry) {
    throw new ConfigMissingError(
      'FLEET_LB_UPSTREAMS',
      'the load balancer needs upstream URLs (--upstream) or REDIS_URL to discover web servers in the registry',
    )
  }
  let closing = false
  const metrics = new LbMetrics(() => upstreams, now)
  const upstreams = new UpstreamSet(
    {
      connections: options.upstreamConnections,
      connectTimeoutMs: options.connectTimeoutMs,
      headersTimeoutMs: options.headersTimeoutMs,
      bodyTimeoutMs: options.bodyTimeoutMs,
      idleTimeoutMs: options.upstreamIdleTimeoutMs,
      slowStartMs: options.slowStartMs,
      now,
      ejectFailures: options.ejectFailures,
      ejectTimeMs: options.ejectTimeMs,
      ejectMaxTimeMs: options.ejectMaxTimeMs,
      ejectMaxPercent: options.ejectMaxPercent,
      panicThreshold: options.panicThreshold,
      outlier5xxPercent: options.outlier5xxPercent,
    },
    createBalancer(options.strategy),
    logger,
    { onEject: (u) => metrics.ejections.labels(u.origin).inc() },
  )
  const health = new HealthChecker(
    upstreams,
    {
      path: options.healthPath,
      intervalMs: options.healthIntervalMs,
      timeoutMs: options.healthTimeoutMs,
      fall: options.healthFall,
      rise: options.healthRise,
    },
    logger,
  )
  const retryAfterS = Math.max(1, Math.ceil(options.healthIntervalMs / 1000))
  const ctx: ProxyContext = {
    options,
    upstreams,
    budget: new RetryBudget(options.retryBudgetPercent, RETRY_MIN_PER_SECOND, now),
    bodies: new BodyBudget(options.bufferMemory, options.maxStreamedBodies),
    metrics,
    logger,
    via: options.instanceId,
    now,
    get closing() {
      return closing
    },
    respondError(res, err: FleetError, requestId, close) {
      metrics.errors.labels(err.code).inc()
      sendError(res, err, requestId, {
        close: close || closing,
        retryAfterS: err.statusCode === 503 ? retryAfterS : undefined,
      })
      if (!close) drainRequest(res)
    },
  }

  const server = http.createServer({
    maxHeaderSize: options.maxHeaderSize,
    // A missing Host is refused by proxyRequest, with a JSON answer like every other error.
    requireHostHeader: false,
    keepAliveTimeout: options.clientKeepAliveMs,
    headersTimeout: options.clientHeaderTimeoutMs,
    requestTimeout: 0,
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(options.clientHeaderTimeoutMs / 4))),
    noDelay: true,
  })
  server.maxConnections = options.maxConnections
  server.timeout = 0
  server.on('request', (req, res) => proxyRequest(ctx, req, res, false))
  server.on('checkContinue', (req, res) => proxyRequest(ctx, req, res, true))
  const tunnels = new Set<Duplex>()
  server.on('upgrade', (req, socket, head) => proxyUpgrade(ctx, req, socket, head, tunnels))
  // CONNECT asks for a tunnel to any host: a reverse proxy refuses it, with an answer (Node would just close).
  server.on('connect', (_req, socket: Socket) => {
    socket.on('error', () => socket.destroy())
    const e = new MethodNotAllowedError('CONNECT is not forwarded by the load balancer')
    metrics.errors.labels(e.code).inc()
    sendRawError(socket, e)
  })
  server.on('connection', (socket: Socket) => {
    metrics.clientConnections++
    socket.once('close', () => metrics.clientConnections--)
  })
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    const inResponse = (socket as Socket & { _httpMessage?: http.ServerResponse })._httpMessage
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable || inResponse?.headersSent) {
      socket.destroy()
      return
    }
    let e: FleetError
    if (err.code === 'HPE_HEADER_OVERFLOW')
      e = new HeadersTooLargeError(`request headers exceed ${options.maxHeaderSize} bytes`)
    else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT')
      e = new ClientTimeoutError(
        `the request headers did not arrive within ${options.clientHeaderTimeoutMs} ms`,
      )
    else e = new MalformedRequestError(`malformed request (${err.code ?? err.message})`)
    metrics.errors.labels(e.code).inc()
    logger.info(
      { code: e.code, reason: err.code ?? err.message, client: socket.remoteAddress },
      'bad client request',
    )
    sendRawError(socket, e)
  })

  await listen(server, options.port, options.host).catch((err: unknown) => {
    throw portTaken(err, options.port, 'FLEET_PORT', `the load balancer on ${options.host}`)
  })
  const discovery: Discovery =
    options.upstreams.length > 0
      ? new StaticDiscovery(options.upstreams, upstreams, health)
      : new RegistryDiscovery(
          options.registry as Registry,
          upstreams,
          health,
          {
            intervalMs: options.discoveryIntervalMs,
            graceMs: Math.max(3000, options.discoveryIntervalMs * 3),
          },
          logger,
        )
  const admin = await startAdminServer(
    {
      upstreams,
      metrics,
      discovery: () => discovery.status(),
      now,
      instanceId: options.instanceId,
      closing: () => closing,
      retryBudgetPercent: options.retryBudgetPercent,
      extension: options.adminExtension,
    },
    options.adminHost,
    options.adminPort,
  ).catch(async (err: Error) => {
    await new Promise((r) => server.close(r))
    throw err
  })
  await discovery.start()
  health.start()
  const port = portOf(server)
  const adminPort = portOf(admin)
  logger.info(
    { port, adminPort, strategy: options.strategy, upstreams: options.upstreams },
    'load balancer listening',
  )

  let closed: Promise<void> | undefined
  return {
    port,
    adminPort,
    upstreams,
    close() {
      closed ??= (async () => {
        closing = true
        discovery.stop()
        const serverClosed = new Promise<void>((r) => server.close(() => r()))
        server.closeIdleConnections()
        const deadline = Date.now() + options.shutdownTimeoutMs
        while (Date.now() < deadline && upstreams.all().some((u) => u.inflight > 0)) {
          server.closeIdleConnections()
          await new Promise((r) => setTimeout(r, 25))
        }
        server.closeAllConnections()
        for (const t of tunnels) t.destroy()
        await serverClosed
        await health.stop()
        await upstreams.close(true)
        const adminClosed = new Promise<void>((r) => admin.close(() => r()))
        admin.closeAllConnections()
        await adminClosed
        logger.info('load balancer closed')
      })()
      return closed
    },
  }
}

async function listen(server: http.Server, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}
