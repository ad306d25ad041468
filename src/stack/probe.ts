/**
 * Readiness probes the supervisor runs against its children: an HTTP GET that must answer 200, or a TCP
 * port that must accept connections. Each probe is one short attempt; the caller loops.
 */
import http from 'node:http'
import net from 'node:net'

/** How the supervisor decides that a child is ready. */
export type Readiness =
  | { kind: 'http'; url: string }
  | { kind: 'tcp'; port: number; host?: string }
  | { kind: 'custom'; check: () => Promise<boolean> }
  /** Ready as soon as the process runs (for children that expose nothing to probe). */
  | { kind: 'none' }

/** One GET of `url` on a fresh connection: true when it answers 200 within `timeoutMs`. */
export function httpOk(url: string, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.once('timeout', () => req.destroy())
    req.once('error', () => resolve(false))
  })
}

/** One TCP connect to host:port: true when it is accepted within `timeoutMs`. */
export function tcpOpen(port: number, host = '127.0.0.1', timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host })
    const done = (ok: boolean) => {
      s.destroy()
      resolve(ok)
    }
    s.setTimeout(timeoutMs, () => done(false))
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
}

/** Runs one attempt of `readiness`. */
export async function probe(readiness: Readiness): Promise<boolean> {
  switch (readiness.kind) {
    case 'http':
      return httpOk(readiness.url)
    case 'tcp':
      return tcpOpen(readiness.port, readiness.host)
    case 'custom':
      return readiness.check().catch(() => false)
    case 'none':
      return true
  }
}
