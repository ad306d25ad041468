/**
 * The load balancer's public HTTP/1.1 server: Node's parser with the client limits, every request handed to
 * the proxy, upgrades to the tunnel, CONNECT refused, and a malformed request answered with a coded error
 * (never a silent close).
 */
import http from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FleetError } from '../errors.js'
import {
  ClientTimeoutError,
  HeadersTooLargeError,
  MalformedRequestError,
  MethodNotAllowedError,
} from './errors.js'
import { type ProxyContext, proxyRequest } from './proxy.js'
import { sendRawError } from './respond.js'
import { proxyUpgrade } from './upgrade.js'

/** A server that proxies through `ctx`; open upgrade tunnels are kept in `tunnels` (closed by the caller). */
export function createPublicServer(ctx: ProxyContext, tunnels: Set<Duplex>): http.Server {
  const server = http.createServer({
    maxHeaderSize: ctx.options.maxHeaderSize,
    // A missing Host is refused by proxyRequest, with a JSON answer like every other error.
    requireHostHeader: false,
    keepAliveTimeout: ctx.options.clientKeepAliveMs,
    headersTimeout: ctx.options.clientHeaderTimeoutMs,
    requestTimeout: 0,
    connectionsCheckingInterval: Math.min(
      1000,
      Math.max(50, Math.floor(ctx.options.clientHeaderTimeoutMs / 4)),
    ),
    noDelay: true,
  })
  server.maxConnections = ctx.options.maxConnections
  server.timeout = 0
  server.on('request', (req, res) => proxyRequest(ctx, req, res, false))
  server.on('checkContinue', (req, res) => proxyRequest(ctx, req, res, true))
  server.on('upgrade', (req, socket, head) => proxyUpgrade(ctx, req, socket, head, tunnels))
  // CONNECT asks for a tunnel to any host: a reverse proxy refuses it, with an answer (Node would just close).
  server.on('connect', (_req, socket: Socket) => {
    socket.on('error', () => socket.destroy())
    const e = new MethodNotAllowedError('CONNECT is not forwarded by the load balancer')
    ctx.metrics.errors.labels(e.code).inc()
    sendRawError(socket, e)
  })
  server.on('connection', (socket: Socket) => {
    ctx.metrics.clientConnections++
    socket.once('close', () => ctx.metrics.clientConnections--)
  })
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    const inResponse = (socket as Socket & { _httpMessage?: http.ServerResponse })._httpMessage
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable || inResponse?.headersSent) {
      socket.destroy()
      return
    }
    let e: FleetError
    if (err.code === 'HPE_HEADER_OVERFLOW')
      e = new HeadersTooLargeError(`request headers exceed ${ctx.options.maxHeaderSize} bytes`)
    else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT')
      e = new ClientTimeoutError(
        `the request headers did not arrive within ${ctx.options.clientHeaderTimeoutMs} ms`,
      )
    else e = new MalformedRequestError(`malformed request (${err.code ?? err.message})`)
    ctx.metrics.errors.labels(e.code).inc()
    ctx.logger.info(
      { code: e.code, reason: err.code ?? err.message, client: socket.remoteAddress },
      'bad client request',
    )
    sendRawError(socket, e)
  })
  return server
}
