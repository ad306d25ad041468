/** A process's Prometheus registry (web server or worker), served on its /metrics. */
import { collectDefaultMetrics, Registry } from 'prom-client'

/** A fresh registry with Node process metrics (CPU, memory, event loop lag, GC) and `role` on every series. */
export function createMetricsRegistry(labels: Record<string, string> = {}): Registry {
  const registry = new Registry()
  registry.setDefaultLabels(labels)
  collectDefaultMetrics({ register: registry })
  return registry
}
