/**
 * TLS at the edge of the Node engine: one TLS listener on the public port that offers HTTP/2 and HTTP/1.1 by
 * ALPN and hands each connection to the server of its protocol. HTTP/1.1 connections go to the same
 * `http.Server` as plain HTTP (its limits, timeouts, upgrades and error answers), HTTP/2 ones to an HTTP/2
 * server whose requests take the same proxy path. A renewed certificate is read again with `reload()`: new
 * handshakes use it, open connections keep theirs.
 */
import type http from 'node:http'
import http2 from 'node:http2'
import type { Socket } from 'node:net'
import tls from 'node:tls'
import { type ProxyContext, proxyRequest } from './proxy.js'
import { readTlsFiles } from './tls-files.js'

export interface TlsFront {
  /** The listener on the public port. */
  readonly server: tls.Server
  /** Reads the certificate and key files again; new handshakes use them. */
  reload(): void
  /** Closes the HTTP/2 sessions (GOAWAY: streams in flight finish), then cuts what is left after `graceMs`. */
  closeSessions(graceMs: number): Promise<void>
}

export function createTlsFront(ctx: ProxyContext, h1: http.Server): TlsFront {
  const files = ctx.options.tls as { certFile: string; keyFile: string }
  const o = ctx.options
  const h2 = http2.createServer({
    // The largest header block a client may send (HPACK-decoded), as FLEET_LB_MAX_HEADER_SIZE for HTTP/1.1.
    maxHeaderListPairs: 256,
    settings: { maxHeaderListSize: o.maxHeaderSize, enablePush: false },
  })
  h2.on('request', (req, res) => proxyRequest(ctx, req as never, res as never, false))
  h2.on('checkContinue', (req, res) => proxyRequest(ctx, req as never, res as never, true))
  h2.setTimeout(Math.max(o.clientKeepAliveMs, o.clientBodyTimeoutMs))
  const sessions = new Set<http2.ServerHttp2Session>()
  h2.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s)
    s.once('close', () => sessions.delete(s))
    s.on('error', () => s.destroy())
  })

  const server = tls.createServer({
    ...readTlsFiles(files),
    ALPNProtocols: ['h2', 'http/1.1'],
    // A client that does not finish its handshake holds a socket no longer than it may take to send headers.
    handshakeTimeout: o.clientHeaderTimeoutMs,
  })
  server.maxConnections = o.maxConnections
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    if (socket.alpnProtocol === 'h2') {
      ctx.metrics.clientConnections++
      socket.once('close', () => ctx.metrics.clientConnections--)
      h2.emit('connection', socket)
    } else h1.emit('connection', socket as Socket)
  })
  // A failed handshake (a plain-HTTP client on the TLS port, a bad certificate at the client) ends its socket.
  server.on('tlsClientError', (_err, socket) => socket.destroy())

  return {
    server,
    reload() {
      server.setSecureContext(readTlsFiles(files))
      ctx.logger.info({ cert: files.certFile }, 'TLS certificate reloaded')
    },
    async closeSessions(graceMs) {
      for (const s of sessions) s.close()
      const deadline = Date.now() + graceMs
      while (sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
      for (const s of sessions) s.destroy()
    },
  }
}
