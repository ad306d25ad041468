/**
 * What the load balancer shows of itself to an extension of its admin port (the dashboard): a read-only view,
 * and the shape of such an extension. The LB imports no extension; the process that starts it (src/cli/lb.ts)
 * plugs one in, so the LB stays a leaf that knows nothing of the dashboard.
 */
import type http from 'node:http'
import type { DiscoveryStatus } from './discovery.js'
import type { LbMetrics } from './metrics.js'
import type { UpstreamSet } from './upstream-set.js'

/** The retry budget's formula, so that the dashboard shows what the LB grants (one formula, not a copy). */
export { RETRY_BUDGET_WINDOW_MS, retriesAllowed } from './retry-budget.js'
export type { DiscoveryStatus, LbMetrics, UpstreamSet }

/** The load balancer, read-only. */
export interface LbView {
  instanceId: string
  upstreams: UpstreamSet
  metrics: LbMetrics
  discovery: () => DiscoveryStatus
  closing: () => boolean
  retryBudgetPercent: number
  now: () => number
}

/** Served on the admin port beside /metrics and /status. */
export interface AdminExtension {
  /** Answers `req` when `path` is the extension's; false when it is not (the admin server goes on). */
  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean
  /** Ends its streams and connections (the admin server is closing). */
  close(): Promise<void>
}

/** Makes the extension once the LB runs. */
export type AdminExtensionFactory = (lb: LbView) => AdminExtension
