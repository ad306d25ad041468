/** The chaos suite's settings: what the environment chooses (CHAOS_*), and the fixed bounds of a run. */
import { parseDuration } from '../src/config/define.js'

/** How long a SIGSTOP fault holds its process (CHAOS_HOLD, 10 s). */
export const HOLD_MS = parseDuration(process.env.CHAOS_HOLD ?? '10s')
/** Only the faults whose name contains one of these words (CHAOS_ONLY, comma-separated; empty: every one). */
export const ONLY = (process.env.CHAOS_ONLY ?? '').split(',').filter(Boolean)
/** The load balancer's engine in the stack under test (CHAOS_LB_ENGINE: node, the default, or haproxy). */
export const LB_ENGINE = lbEngine(process.env.CHAOS_LB_ENGINE)
/** CHAOS_KEEP=1 keeps the data folder after the run. */
export const KEEP = process.env.CHAOS_KEEP === '1'
/** How long a fault may take until the stack is whole again, in ms. */
export const RECOVER_MS = 60_000
/** A request of the load without an answer for this long counts as failed (CLIENT_TIMEOUT), in ms. */
export const REQUEST_TIMEOUT_MS = 40_000
/** Products the anonymous readers ask for: warmed into the cache before the first fault. */
export const HOT_PRODUCTS = 40
/** The stack's admin, who uploads images. */
export const ADMIN = { email: 'chaos-admin@example.com', password: 'chaos admin password' }

function lbEngine(value: string | undefined): 'node' | 'haproxy' {
  const engine = value || 'node'
  if (engine !== 'node' && engine !== 'haproxy')
    throw new Error(`CHAOS_LB_ENGINE=${value}: the load balancer's engine is node or haproxy`)
  return engine
}
