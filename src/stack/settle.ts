/**
 * During a rolling restart, a web server that is ready again must also be back in the load balancer's
 * rotation before the next one stops, or the stack would briefly run one server short. This asks the LB's
 * admin `/status` until it lists the server's URL as healthy (bounded), so the next stop is safe.
 */
import http from 'node:http'
import type { ChildSnapshot } from './child.js'

const SETTLE_LIMIT_MS = 15_000

/** GET `url` and parse its JSON body; undefined on any failure. */
export function getJson(url: string): Promise<unknown> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 1_000 }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        text += c
      })
      res.on('end', () => {
        try {
          resolve(JSON.parse(text))
        } catch {
          resolve(undefined)
        }
      })
      res.on('error', () => resolve(undefined))
    })
    req.once('timeout', () => req.destroy())
    req.once('error', () => resolve(undefined))
  })
}

const HEALTHY = new Set(['up', 'healthy', 'ready', 'active'])

/**
 * True when some object in `status` names an upstream on `port` and says it takes requests (`eligible: true`
 * as Fleet's LB says it, else `healthy: true` or a `state`/`status`/`health` of up/healthy/ready/active) and
 * is not draining or ejected.
 */
export function lbRoutesTo(status: unknown, port: number): boolean {
  const needle = `:${port}`
  const visit = (v: unknown): boolean => {
    if (Array.isArray(v)) return v.some(visit)
    if (!v || typeof v !== 'object') return false
    const o = v as Record<string, unknown>
    const names = Object.values(o).some(
      (x) => typeof x === 'string' && (x.endsWith(needle) || x.includes(`${needle}/`)),
    )
    if (names) {
      const words = ['state', 'status', 'health'].map((k) => o[k]).filter((x) => typeof x === 'string')
      const up =
        typeof o.eligible === 'boolean'
          ? o.eligible
          : o.healthy === true || words.some((w) => HEALTHY.has(String(w).toLowerCase()))
      const out = o.draining === true || o.ejected === true || o.healthy === false
      if (up && !out) return true
    }
    return Object.values(o).some(visit)
  }
  return visit(status)
}

/** True when the LB's `/status` lists at least one upstream that takes requests (`eligible: true`). */
export function lbRoutesToAny(status: unknown): boolean {
  const upstreams = (status as { upstreams?: unknown } | undefined)?.upstreams
  return Array.isArray(upstreams) && upstreams.some((u) => (u as { eligible?: unknown }).eligible === true)
}

/** Waits until the LB on `adminPort` routes to the child (or a bound passes); returns a note for progress. */
export async function settleInLb(adminPort: number, child: ChildSnapshot): Promise<string | undefined> {
  if (child.port === undefined) return undefined
  const deadline = Date.now() + SETTLE_LIMIT_MS
  while (Date.now() < deadline) {
    const status = await getJson(`http://127.0.0.1:${adminPort}/status`)
    if (lbRoutesTo(status, child.port)) return 'back in the load balancer'
    await new Promise((r) => setTimeout(r, 200))
  }
  return `the load balancer did not list it as healthy within ${SETTLE_LIMIT_MS / 1000} s; going on`
}
