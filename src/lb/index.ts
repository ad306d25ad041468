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
import type http from 'node:http'
import type net from 'node:net'
import type { Duplex } from 'node:stream'
import { ConfigMissingError } from '../config/errors.js'
import type { FleetError } from '../errors.js'
import { portTaken } from '../errors.js'
import type { Logger } from '../log.js'
import { portOf, startAdminServer } from './admin.js'
import { BodyBudget } from './body.js'
import { createDiscovery, createUpstreamSet, type StartOptions, statusSource } from './control-plane.js'
import { HealthChecker } from './health.js'
import { LbMetrics } from './metrics.js'
import type { LoadBalancerOptions } from './options.js'
import type { ProxyContext } from './proxy.js'
import { createPublicServer } from './public-server.js'
import { createRedirectServer } from './redirect.js'
import { drainRequest, sendError } from './respond.js'
import { RETRY_MIN_PER_SECOND, RetryBudget } from './retry-budget.js'
import { createTlsFront } from './tls.js'
import type { UpstreamSet } from './upstream-set.js'

export { type LoadBalancerOptions, lbOptionsFromConfig } from './options.js'

export interface LoadBalancer {
  /** The public port (the OS-picked one when options.port was 0). */
  readonly port: number
  readonly adminPort: number
  /** The upstreams, their state and the balancer (for status views and tests). */
  readonly upstreams: UpstreamSet
  /** Reads the TLS certificate and key again (a renewal); open connections keep theirs. */
  reloadCertificate(): Promise<void>
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), closes the pools. */
  close(): Promise<void>
}

/** Starts the load balancer and resolves once both ports listen and the first discovery ran. */
export async function startLoadBalancer(options: StartOptions): Promise<LoadBalancer> {
  if (options.upstreams.length === 0 && !options.registry) {
    throw new ConfigMissingError(
      'FLEET_LB_UPSTREAMS',
      'the load balancer needs upstream URLs (--upstream) or REDIS_URL to discover web servers in the registry',
    )
  }
  if (options.engine === 'haproxy') {
    const { startHaproxyEngine } = await import('./haproxy/engine.js')
    return startHaproxyEngine(options)
  }
  const logger = options.logger.child({ component: 'lb' })
  const now = options.now ?? Date.now
  let closing = false
  const metrics = new LbMetrics(() => upstreams, now)
  const upstreams = createUpstreamSet(options, logger, metrics, now)
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
  const ctx = createProxyContext(options, { upstreams, metrics, logger, now, closing: () => closing })
  const tunnels = new Set<Duplex>()
  const front = await listenPublic(ctx, tunnels)
  const discovery = createDiscovery(options, upstreams, health, logger)
  const admin = await startAdminServer(
    statusSource(options, { upstreams, metrics, discovery, now, closing: () => closing }),
    options.adminHost,
    options.adminPort,
  ).catch(async (err: Error) => {
    front.redirect?.close()
    await new Promise((r) => front.listener.close(r))
    throw err
  })
  await discovery.start()
  health.start()
  const port = portOf(front.listener)
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
    async reloadCertificate() {
      if (!front.tls)
        throw new ConfigMissingError('FLEET_LB_TLS_CERT', 'there is no certificate to reload: TLS is off')
      front.tls.reload()
    },
    close() {
      closed ??= (async () => {
        closing = true
        discovery.stop()
        await closePublic(front, upstreams, tunnels, options.shutdownTimeoutMs)
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

/** The public side of the Node engine: the HTTP/1.1 server, the TLS front when on, the HTTP redirect. */
interface PublicListeners {
  /** The HTTP/1.1 server every request reaches (behind the TLS front when there is one). */
  server: http.Server
  tls: ReturnType<typeof createTlsFront> | undefined
  /** What listens on the public port: the TLS front, else `server`. */
  listener: net.Server
  redirect: http.Server | undefined
}

/** Opens the public port (and the HTTP redirect port with TLS); a port taken is a coded error. */
async function listenPublic(ctx: ProxyContext, tunnels: Set<Duplex>): Promise<PublicListeners> {
  const { options } = ctx
  const server = createPublicServer(ctx, tunnels)
  // With TLS, one listener takes the TLS connections and hands each to HTTP/1.1 (`server`) or HTTP/2.
  const tls = options.tls ? createTlsFront(ctx, server) : undefined
  const listener: net.Server = tls?.server ?? server
  await listen(listener, options.port, options.host).catch((err: unknown) => {
    throw portTaken(err, options.port, 'FLEET_PORT', `the load balancer on ${options.host}`)
  })
  const redirect =
    tls && options.redirectPort !== undefined ? createRedirectServer(portOf(listener)) : undefined
  if (redirect) {
    await listen(redirect, options.redirectPort as number, options.host).catch((err: unknown) => {
      listener.close()
      throw portTaken(
        err,
        options.redirectPort as number,
        'FLEET_LB_REDIRECT_PORT',
        `the HTTP redirect on ${options.host}`,
      )
    })
  }
  return { server, tls, listener, redirect }
}

/** Stops accepting on the public side and lets what is in flight finish, up to `timeoutMs`. */
async function closePublic(
  front: PublicListeners,
  upstreams: UpstreamSet,
  tunnels: Set<Duplex>,
  timeoutMs: number,
): Promise<void> {
  if (front.tls) front.listener.close()
  front.redirect?.close()
  front.redirect?.closeAllConnections()
  await Promise.all([
    drainPublicServer(front.server, upstreams, tunnels, timeoutMs),
    front.tls?.closeSessions(timeoutMs),
  ])
}

/** What every request's proxying shares: the upstreams, the budgets, and the coded error answer. */
function createProxyContext(
  options: LoadBalancerOptions,
  shared: {
    upstreams: UpstreamSet
    metrics: LbMetrics
    logger: Logger
    now: () => number
    closing: () => boolean
  },
): ProxyContext {
  const { metrics, now } = shared
  const retryAfterS = Math.max(1, Math.ceil(options.healthIntervalMs / 1000))
  return {
    options,
    upstreams: shared.upstreams,
    budget: new RetryBudget(options.retryBudgetPercent, RETRY_MIN_PER_SECOND, now),
    bodies: new BodyBudget(options.bufferMemory, options.maxStreamedBodies),
    metrics,
    logger: shared.logger,
    via: options.instanceId,
    now,
    get closing() {
      return shared.closing()
    },
    respondError(res, err: FleetError, requestId, close) {
      metrics.errors.labels(err.code).inc()
      sendError(res, err, requestId, {
        close: close || shared.closing(),
        retryAfterS: err.statusCode === 503 ? retryAfterS : undefined,
      })
      if (!close) drainRequest(res)
    },
  }
}

/** Stops accepting, lets in-flight requests finish (up to `timeoutMs`), then closes every connection. */
async function drainPublicServer(
  server: http.Server,
  upstreams: UpstreamSet,
  tunnels: Set<Duplex>,
  timeoutMs: number,
): Promise<void> {
  const serverClosed = new Promise<void>((r) => server.close(() => r()))
  server.closeIdleConnections()
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && upstreams.all().some((u) => u.inflight > 0)) {
    server.closeIdleConnections()
    await new Promise((r) => setTimeout(r, 25))
  }
  server.closeAllConnections()
  for (const t of tunnels) t.destroy()
  await serverClosed
}

async function listen(server: net.Server, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}
