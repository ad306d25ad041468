/**
 * With TLS on, a plain-HTTP port that sends every request to the same URL over HTTPS (308: the method and
 * body are kept), so `http://` links and typed addresses still arrive. It proxies nothing.
 */
import http from 'node:http'
import { MalformedRequestError } from './errors.js'
import { sendError } from './respond.js'

/** The https URL for a request that arrived over plain HTTP, or undefined without a usable Host. */
export function httpsLocation(host: string | undefined, url: string, httpsPort: number): string | undefined {
  if (!host || !/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/.test(host)) return undefined
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]
  const path = url.startsWith('/') ? url : '/'
  return `https://${name}${httpsPort === 443 ? '' : `:${httpsPort}`}${path}`
}

export function createRedirectServer(httpsPort: number): http.Server {
  const server = http.createServer((req, res) => {
    const location = httpsLocation(req.headers.host, req.url ?? '/', httpsPort)
    if (!location) {
      sendError(
        res,
        new MalformedRequestError('a request to the HTTP port needs a valid Host header'),
        undefined,
      )
      return
    }
    res.writeHead(308, { location, 'content-length': 0, 'cache-control': 'no-store' }).end()
    if (!req.complete) req.resume()
  })
  server.keepAliveTimeout = 5_000
  server.headersTimeout = 10_000
  return server
}
