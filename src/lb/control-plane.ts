/**
 * The load balancer's control plane, shared by both engines: the set of upstreams with their state
 * (membership, drain, weights, health as last seen) and where membership comes from (fixed URLs or the
 * registry). The Node engine proxies through it; the HAProxy engine mirrors it into HAProxy.
 */
import type { Logger } from '../log.js'
import type { Registry } from '../registry/registry.js'
import type { StatusSource } from './admin.js'
import { createBalancer } from './balancer.js'
import { type Discovery, type HealthProbe, RegistryDiscovery, StaticDiscovery } from './discovery.js'
import type { LbMetrics } from './metrics.js'
import type { LoadBalancerOptions } from './options.js'
import { UpstreamSet } from './upstream-set.js'
import type { AdminExtensionFactory } from './view.js'

export type StartOptions = LoadBalancerOptions & {
  logger: Logger
  registry?: Registry
  adminExtension?: AdminExtensionFactory
  /** The `haproxy` program of the HAProxy engine (found or installed by the CLI; default: `haproxy` on PATH). */
  haproxyPath?: string
}

/** The upstreams with their pools, slow start and passive ejection; each ejection is counted. */
export function createUpstreamSet(
  options: LoadBalancerOptions,
  logger: Logger,
  metrics: LbMetrics,
  now: () => number,
  onMembership?: () => void,
): UpstreamSet {
  return new UpstreamSet(
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
    { onEject: (u) => metrics.ejections.labels(u.origin).inc(), onMembership },
  )
}

/** Fixed upstream URLs when given, else the registry's web servers. */
export function createDiscovery(
  options: StartOptions,
  upstreams: UpstreamSet,
  health: HealthProbe,
  logger: Logger,
): Discovery {
  if (options.upstreams.length > 0) return new StaticDiscovery(options.upstreams, upstreams, health)
  return new RegistryDiscovery(
    options.registry as Registry,
    upstreams,
    health,
    { intervalMs: options.discoveryIntervalMs, graceMs: Math.max(3000, options.discoveryIntervalMs * 3) },
    logger,
  )
}

/** The admin port's view of a running LB of either engine (`extra`: the engine's name, more metrics). */
export function statusSource(
  options: StartOptions,
  parts: {
    upstreams: UpstreamSet
    metrics: LbMetrics
    discovery: Discovery
    now: () => number
    closing: () => boolean
  },
  extra: Pick<StatusSource, 'engine' | 'moreMetrics'> = {},
): StatusSource {
  return {
    upstreams: parts.upstreams,
    metrics: parts.metrics,
    discovery: () => parts.discovery.status(),
    now: parts.now,
    instanceId: options.instanceId,
    closing: parts.closing,
    retryBudgetPercent: options.retryBudgetPercent,
    extension: options.adminExtension,
    ...extra,
  }
}
