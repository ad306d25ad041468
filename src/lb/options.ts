/**
 * The load balancer's options: every field comes from a setting in `src/config/settings/lb.ts` (units in
 * the names: ms, bytes, percent), so `fleet lb`, `fleet up` and the tests build them the same way.
 */
import type { Config } from '../config/index.js'

export type StrategyName = 'p2c' | 'round-robin' | 'weighted'

export interface LoadBalancerOptions {
  /** Public port (0: the OS picks one; read it back from `LoadBalancer.port`). */
  port: number
  host: string
  /** Admin port for /metrics and /status (0: the OS picks one). */
  adminPort: number
  /** Fixed upstream URLs (`#weight=N` sets a weight); empty: discover web servers in the registry. */
  upstreams: string[]
  strategy: StrategyName
  connectTimeoutMs: number
  headersTimeoutMs: number
  /** Hedge a request safe to send twice on another upstream after this long without headers (0: never). */
  tryTimeoutMs: number
  bodyTimeoutMs: number
  upstreamIdleTimeoutMs: number
  upstreamConnections: number
  clientHeaderTimeoutMs: number
  clientBodyTimeoutMs: number
  clientKeepAliveMs: number
  maxHeaderSize: number
  maxBodySize: number
  maxConnections: number
  healthPath: string
  healthIntervalMs: number
  healthTimeoutMs: number
  healthFall: number
  healthRise: number
  ejectFailures: number
  ejectTimeMs: number
  ejectMaxTimeMs: number
  ejectMaxPercent: number
  /** Panic below this share of healthy upstreams (percent; 0 never). */
  panicThreshold: number
  slowStartMs: number
  retries: number
  retryBudgetPercent: number
  retryBufferSize: number
  discoveryIntervalMs: number
  /** How long close() waits for in-flight requests before it cuts them. */
  shutdownTimeoutMs: number
  /** Name in the `Via` header and logs. */
  instanceId: string
  /** Clock in ms (injectable for slow start and ejection tests). */
  now?: () => number
}

/** The load balancer's options from a resolved config. */
export function lbOptionsFromConfig(config: Config): LoadBalancerOptions {
  return {
    port: config.port,
    host: config.lbHost,
    adminPort: config.lbAdminPort,
    upstreams: config.lbUpstreams ?? [],
    strategy: config.lbStrategy,
    connectTimeoutMs: config.lbConnectTimeout,
    headersTimeoutMs: config.lbHeadersTimeout,
    tryTimeoutMs: config.lbTryTimeout,
    bodyTimeoutMs: config.lbBodyTimeout,
    upstreamIdleTimeoutMs: config.lbUpstreamIdleTimeout,
    upstreamConnections: config.lbUpstreamConnections,
    clientHeaderTimeoutMs: config.lbClientHeaderTimeout,
    clientBodyTimeoutMs: config.lbClientBodyTimeout,
    clientKeepAliveMs: config.lbClientKeepAlive,
    maxHeaderSize: config.lbMaxHeaderSize,
    maxBodySize: config.lbMaxBodySize,
    maxConnections: config.lbMaxConnections,
    healthPath: config.lbHealthPath,
    healthIntervalMs: config.lbHealthInterval,
    healthTimeoutMs: config.lbHealthTimeout,
    healthFall: config.lbHealthFall,
    healthRise: config.lbHealthRise,
    ejectFailures: config.lbEjectFailures,
    ejectTimeMs: config.lbEjectTime,
    ejectMaxTimeMs: config.lbEjectMaxTime,
    ejectMaxPercent: config.lbEjectMaxPercent,
    panicThreshold: config.lbPanicThreshold,
    slowStartMs: config.lbSlowStart,
    retries: config.lbRetries,
    retryBudgetPercent: config.lbRetryBudget,
    retryBufferSize: config.lbRetryBufferSize,
    discoveryIntervalMs: config.lbDiscoveryInterval,
    shutdownTimeoutMs: config.shutdownTimeout,
    instanceId: config.instanceId ?? 'fleet-lb',
  }
}
