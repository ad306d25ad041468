/**
 * Requests through the load balancer, as users send them: each answer is reduced to its status and error
 * code (the body's `error.code`, `HTTP_<status>`, or the client's own error), and a request of the load is
 * kept as a sample for the report.
 */
import { REQUEST_TIMEOUT_MS } from './options.js'

/** What a request of the load does: anonymous catalog read, logged-in read, write, image upload, job. */
export type Kind = 'catalog' | 'session' | 'write' | 'upload' | 'job'

export interface Sample {
  kind: Kind
  /** The request, ids replaced: `PUT /api/cart/items/:id` (for the report's failed requests). */
  route: string
  start: number
  ms: number
  status: number
  code: string
}

export interface Answer {
  status: number
  code: string
  body: unknown
  headers: Headers
}

/** A failed request, as users see it: no answer, a 5xx or a 429. */
export const failed = (s: Sample) => s.status === 0 || s.status >= 500 || s.status === 429

export class Client {
  /** Every request of the load so far. */
  readonly samples: Sample[] = []
  readonly #base: string

  constructor(base: string) {
    this.#base = base
  }

  /** Sends one request; it is a sample of the load when `kind` is given. Never throws. */
  async call(kind: Kind | undefined, method: string, url: string, init: RequestInit = {}): Promise<Answer> {
    const start = Date.now()
    let answer: Answer
    try {
      const res = await fetch(`${this.#base}${url}`, {
        method,
        ...init,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
      const text = await res.text()
      let body: unknown = text
      try {
        body = JSON.parse(text)
      } catch {
        // not JSON
      }
      const code =
        (body as { error?: { code?: string } })?.error?.code ?? (res.ok ? '' : `HTTP_${res.status}`)
      answer = { status: res.status, code, body, headers: res.headers }
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } }
      answer = {
        status: 0,
        code: e.name === 'TimeoutError' ? 'CLIENT_TIMEOUT' : (e.cause?.code ?? e.name),
        body: undefined,
        headers: new Headers(),
      }
    }
    if (kind)
      this.samples.push({
        kind,
        route: `${method} ${url.replace(/\?.*$/, '').replace(/\/\d+(?=\/|$)/g, '/:id')}`,
        start,
        ms: Date.now() - start,
        status: answer.status,
        code: answer.code,
      })
    return answer
  }

  /** Logs in; resolves with the session cookie. */
  async login(email: string, password: string): Promise<string> {
    const a = await this.call(undefined, 'POST', '/api/session', json({ email, password }))
    if (a.status !== 200) throw new Error(`login of ${email}: ${a.status} ${a.code}`)
    return cookieOf(a)
  }
}

/** A JSON body, with the session cookie and other headers when given. */
export const json = (body: unknown, cookie?: string, extra: Record<string, string> = {}): RequestInit => ({
  headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}), ...extra },
  body: JSON.stringify(body),
})

/** The cookies an answer sets (as a Cookie header), or `previous` when it sets none. */
export function cookieOf(a: Answer, previous = ''): string {
  const set = a.headers.getSetCookie()
  return set.length > 0 ? set.map((c) => c.split(';')[0]).join('; ') : previous
}
