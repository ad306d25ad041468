/**
 * The headers every answer of a web server carries, computed once at start (a hit should not rebuild them):
 * security headers fit for a JSON API, and who answered. Each has a reason; helmet's other defaults protect
 * HTML documents (COOP, Origin-Agent-Cluster, DNS prefetch) or browsers long gone (X-XSS-Protection,
 * X-Download-Options, X-Permitted-Cross-Domain-Policies), and cost bytes on every answer of a JSON API.
 */
import type { Config } from '../config/index.js'

/** Security headers of every answer; an app that serves HTML sets its own Content-Security-Policy there. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  // A browser takes the Content-Type as sent: JSON stays JSON, an image stays an image.
  'x-content-type-options': 'nosniff',
  // An answer opened as a page loads nothing and cannot be framed...
  'content-security-policy': "default-src 'none';frame-ancestors 'none'",
  // ...nor framed by browsers that predate frame-ancestors.
  'x-frame-options': 'DENY',
  // Other origins may not embed the answers (public images set `cross-origin` on their own replies).
  'cross-origin-resource-policy': 'same-origin',
})

/** The headers set on every answer of this process, before the route runs (it may replace them). */
export function constantHeaders(instanceId: string): Readonly<Record<string, string>> {
  return Object.freeze({ ...SECURITY_HEADERS, 'x-served-by': instanceId })
}

/** The Strict-Transport-Security value (undefined: never sent), for answers to requests that came over https. */
export function hstsValue(config: Pick<Config, 'hstsMaxAge'>): string | undefined {
  return config.hstsMaxAge > 0 ? `max-age=${Math.floor(config.hstsMaxAge / 1000)}` : undefined
}
