/**
 * The load balancer's options: every field comes from a setting in `src/config/settings/lb.ts` (units in
 * the names: ms, bytes, percent), so `fleet lb`, `fleet up` and the tests build them the same way.
 */
import { BlockList, isIPv6 } from 'node:net'
import os from 'node:os'
import { ConfigError, ConfigMissingError } from '../config/errors.js'
import type { Config } from '../config/index.js'

export type StrategyName = 'p2c' | 'round-robin' | 'weighted'
export type EngineName = 'node' | 'haproxy'

export interface LoadBalancerOptions {
  /** Public port (0: the OS picks one; read it back from `LoadBalancer.port`). */
  port: number
  host: string
  /** Admin port for /metrics and /status (0: the OS picks one), and the addresses it listens on (comma-separated). */
  adminPort: number
  adminHost: string
  /** Fixed upstream URLs (`#weight=N` sets a weight); empty: discover web servers in the registry. */
  upstreams: string[]
  /** The data plane: Fleet's own (`node`) or HAProxy driven by Fleet (`haproxy`). Default `node`. */
  engine?: EngineName
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
  /** Eject an upstream whose 5xx share is at least this percent and 3x the others' (0: never). */
  outlier5xxPercent: number
  slowStartMs: number
  retries: number
  retryBudgetPercent: number
  /** Bodies up to this size are read whole before an upstream is picked (and may be resent). */
  requestBufferSize: number
  /** Most bytes of request bodies held at once. */
  bufferMemory: number
  /** Most bodies larger than requestBufferSize streamed at once. */
  maxStreamedBodies: number
  /** Deadline for a whole buffered request to arrive. */
  clientRequestTimeoutMs: number
  /** Proxies whose X-Forwarded-* headers are kept (empty: none). */
  trustedProxies: BlockList | undefined
  /** TLS on the public port (PEM file paths); HTTP/2 and HTTP/1.1 by ALPN. */
  tls?: { certFile: string; keyFile: string }
  /** With TLS: a plain-HTTP port that redirects to HTTPS (undefined: none). */
  redirectPort?: number
  /** Paths the public port answers 404 for (normalized: lower case, no trailing slash). */
  internalPaths: string[]
  discoveryIntervalMs: number
  /** How long close() waits for in-flight requests before it cuts them. */
  shutdownTimeoutMs: number
  /** The LB's name (FLEET_LB_NAME): in the `Via` header, logs, /status and the registry. */
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
    adminHost: config.lbAdminHost,
    upstreams: config.lbUpstreams ?? [],
    engine: config.lbEngine,
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
    outlier5xxPercent: config.lbOutlier5xx,
    slowStartMs: config.lbSlowStart,
    retries: config.lbRetries,
    retryBudgetPercent: config.lbRetryBudget,
    requestBufferSize: config.lbRequestBufferSize,
    bufferMemory: config.lbBufferMemory,
    maxStreamedBodies: config.lbMaxStreamedBodies,
    clientRequestTimeoutMs: config.lbClientRequestTimeout,
    tls: tlsOf(config.lbTlsCert, config.lbTlsKey),
    redirectPort: config.lbRedirectPort,
    trustedProxies: trustedProxies(config.lbTrustedProxies),
    internalPaths: listOf(config.lbInternalPaths).map(normalizePath),
    discoveryIntervalMs: config.lbDiscoveryInterval,
    shutdownTimeoutMs: config.shutdownTimeout,
    instanceId: config.lbName ?? config.instanceId ?? defaultLbName(config.port),
  }
}

/**
 * `fleet-lb-<host name>-<public port>` (the pid for a port the OS picks): distinct for each LB of a fleet,
 * and a valid `Via` pseudonym (RFC 9110 7.6.3) and HAProxy word.
 */
export function defaultLbName(port: number): string {
  const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'host'
  return `fleet-lb-${host}-${port || process.pid}`
}

/** Both files or neither: one without the other is a configuration error. */
function tlsOf(certFile: string | undefined, keyFile: string | undefined): LoadBalancerOptions['tls'] {
  if (!certFile && !keyFile) return undefined
  if (!certFile || !keyFile) {
    throw new ConfigMissingError(
      certFile ? 'FLEET_LB_TLS_KEY' : 'FLEET_LB_TLS_CERT',
      'TLS on the public port needs both FLEET_LB_TLS_CERT (--tls-cert) and FLEET_LB_TLS_KEY (--tls-key)',
    )
  }
  return { certFile, keyFile }
}

function listOf(value: string): string[] {
  return value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean)
}

/** A path as the public port compares it with the internal ones: decoded, lower case, one slash each. */
export function normalizePath(path: string): string {
  let p = path.split('?')[0] ?? ''
  try {
    p = decodeURIComponent(p)
  } catch {
    // a malformed escape: compared as written
  }
  p = p.toLowerCase().replace(/\/{2,}/g, '/')
  // Dot segments, as a server that resolves them would (RFC 3986 5.2.4).
  if (p.includes('/.')) p = new URL(p, 'http://x').pathname
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p
}

/** FLEET_LB_TRUSTED_PROXIES as a BlockList (undefined when empty); a bad entry is a ConfigError. */
export function trustedProxies(value: string): BlockList | undefined {
  const entries = listOf(value)
  if (entries.length === 0) return undefined
  const list = new BlockList()
  for (const entry of entries) {
    const [address, bits] = entry.split('/') as [string, string | undefined]
    const type = isIPv6(address) ? 'ipv6' : 'ipv4'
    try {
      if (bits === undefined) list.addAddress(address, type)
      else list.addSubnet(address, Number(bits), type)
    } catch (err) {
      throw new ConfigError(
        'FLEET_LB_TRUSTED_PROXIES',
        value,
        `${entry} is not an address or CIDR range (e.g. 10.0.0.0/8)`,
        'the environment',
        { cause: err },
      )
    }
  }
  return list
}
