/**
 * Upgraded connections (WebSocket): the request head goes to a picked upstream over a TCP connection of its
 * own, with the proxy headers added and `Connection: upgrade` kept; from then on bytes flow both ways
 * untouched until either side closes. The upstream's answer (101 or a refusal) reaches the client as sent.
 */
import type { IncomingMessage } from 'node:http'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import { isFleetError } from '../errors.js'
import { BadGatewayError, NoUpstreamError, ShuttingDownError } from './errors.js'
import { upstreamRequestHead } from './headers.js'
import type { ProxyContext } from './proxy.js'
import { sendRawError } from './respond.js'

/** Pipes an upgrade request to an upstream; `tunnels` tracks the open ones for shutdown. */
export function proxyUpgrade(
  ctx: ProxyContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  tunnels: Set<Duplex>,
): void {
  const client = socket as net.Socket
  client.on('error', () => client.destroy())
  if (ctx.closing) {
    sendRawError(client, new ShuttingDownError())
    return
  }
  let up: ReturnType<typeof upstreamRequestHead>
  try {
    up = upstreamRequestHead(req.rawHeaders, client.remoteAddress ?? '', req.httpVersion, ctx.via)
  } catch (err) {
    if (isFleetError(err)) sendRawError(client, err)
    else client.destroy()
    return
  }
  const upstream = ctx.upstreams.pick(ctx.now())
  if (!upstream) {
    sendRawError(client, new NoUpstreamError())
    return
  }
  const url = new URL(upstream.origin)
  const conn = net.connect({ host: url.hostname, port: Number(url.port || 80) })
  conn.setNoDelay(true)
  let connected = false
  upstream.inflight++
  tunnels.add(client)
  const timer = setTimeout(() => conn.destroy(new Error('connect timeout')), ctx.options.connectTimeoutMs)
  conn.once('connect', () => {
    clearTimeout(timer)
    connected = true
    let text = `${req.method} ${req.url} HTTP/1.1\r\n`
    for (let i = 0; i < up.headers.length; i += 2) text += `${up.headers[i]}: ${up.headers[i + 1]}\r\n`
    text += `connection: upgrade\r\nupgrade: ${req.headers.upgrade ?? 'websocket'}\r\n\r\n`
    conn.write(text)
    if (head.length > 0) conn.write(head)
    client.pipe(conn)
    conn.pipe(client)
  })
  conn.on('error', (err) => {
    clearTimeout(timer)
    if (!connected) {
      ctx.upstreams.record(upstream, true)
      ctx.logger.warn(
        { requestId: up.requestId, upstream: upstream.origin, err: err.message },
        'upgrade: upstream connection failed',
      )
      sendRawError(client, new BadGatewayError(upstream.origin, err.message, { cause: err }))
    } else client.destroy()
  })
  let closed = false
  const onClose = (): void => {
    if (closed) return
    closed = true
    upstream.inflight--
    tunnels.delete(client)
    conn.destroy()
    // Before the tunnel existed the client gets its 502 (sendRawError closes it after writing).
    if (connected) client.destroy()
  }
  conn.once('close', onClose)
  client.once('close', onClose)
}
