/**
 * Upgraded connections (WebSocket). The request goes to a picked upstream over a connection of its own, with
 * the proxy headers added and `Connection: upgrade` kept, through Node's HTTP client, which parses the
 * answer. Only a `101 Switching Protocols` opens a tunnel: then bytes flow both ways untouched until either
 * side closes. Any other answer is a plain response: it is relayed to the client and the connection is
 * closed, so no later bytes of it can reach an upstream unchecked (the smuggling a refused upgrade would
 * allow if the LB kept a raw pipe).
 */
import http, { type IncomingMessage, STATUS_CODES } from 'node:http'
import type net from 'node:net'
import type { Duplex } from 'node:stream'
import { isFleetError } from '../errors.js'
import { BadGatewayError, NoUpstreamError, ShuttingDownError, UpstreamTimeoutError } from './errors.js'
import { clientResponseHeaders, upstreamRequestHead } from './headers.js'
import type { ProxyContext } from './proxy.js'
import { sendRawError } from './respond.js'
import type { Upstream } from './upstream.js'

/** The status line and headers of `res` for the client: hop-by-hop headers dropped, then `extra`. */
function responseHead(
  res: IncomingMessage,
  ctx: ProxyContext,
  requestId: string,
  extra: readonly string[],
): string {
  const raw = res.rawHeaders.map((h) => Buffer.from(h, 'latin1'))
  const headers = [...clientResponseHeaders(raw, ctx.via, requestId), ...extra]
  let text = `HTTP/1.1 ${res.statusCode} ${res.statusMessage || STATUS_CODES[res.statusCode ?? 500] || ''}\r\n`
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`
  return `${text}\r\n`
}

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
  const up = headOrRefuse(ctx, req, client)
  if (!up) return
  const upstream = ctx.upstreams.pick(ctx.now())
  if (!upstream || !(req.url ?? '').startsWith('/')) {
    sendRawError(client, new NoUpstreamError())
    return
  }
  const attempt: Attempt = { ctx, client, upstream, requestId: up.requestId, answered: false }
  const outgoing = upstreamRequest(ctx, req, upstream, up.headers)
  track(attempt, tunnels, outgoing)
  outgoing.on('error', (err: Error & { timeout?: boolean }) => fail(attempt, err, err.timeout === true))
  outgoing.on('upgrade', (res, upSocket, upHead) => openTunnel(attempt, res, upSocket, upHead, head))
  outgoing.on('response', (res) => relayRefused(attempt, res))
  outgoing.end()
}

/** One upgrade on its way to an upstream: what its steps share. */
interface Attempt {
  readonly ctx: ProxyContext
  readonly client: net.Socket
  readonly upstream: Upstream
  readonly requestId: string
  /** Set once the upstream answered or failed: a later failure only closes the client. */
  answered: boolean
}

/** The request head for the upstream; undefined when refused (a coded answer sent, or the socket cut). */
function headOrRefuse(
  ctx: ProxyContext,
  req: IncomingMessage,
  client: net.Socket,
): ReturnType<typeof upstreamRequestHead> | undefined {
  try {
    const address = client.remoteAddress ?? ''
    const trusted =
      ctx.options.trustedProxies?.check(address, client.remoteFamily === 'IPv6' ? 'ipv6' : 'ipv4') ?? false
    return upstreamRequestHead(req.rawHeaders, address, req.httpVersion, ctx.via, trusted)
  } catch (err) {
    if (isFleetError(err)) sendRawError(client, err)
    else client.destroy()
    return undefined
  }
}

/** The request to `upstream` on a connection of its own, `Connection: upgrade` kept, with its timeouts. */
function upstreamRequest(
  ctx: ProxyContext,
  req: IncomingMessage,
  upstream: Upstream,
  head: readonly string[],
): http.ClientRequest {
  const url = new URL(upstream.origin)
  const headers = [...head, 'connection', 'upgrade', 'upgrade', req.headers.upgrade ?? 'websocket']
  const outgoing = http.request({
    host: url.hostname,
    port: Number(url.port || 80),
    method: req.method,
    path: req.url,
    headers,
    agent: false,
    timeout: ctx.options.connectTimeoutMs,
  })
  outgoing.once('socket', (s: net.Socket) => {
    // The connect timeout first, then the headers timeout for the answer; a tunnel has none.
    s.once('connect', () => {
      s.setNoDelay(true)
      s.setTimeout(ctx.options.headersTimeoutMs)
    })
  })
  outgoing.on('timeout', () =>
    outgoing.destroy(Object.assign(new Error('upstream timeout'), { timeout: true })),
  )
  return outgoing
}

/** Counts the attempt in flight on its upstream and among the tunnels until the client closes. */
function track(a: Attempt, tunnels: Set<Duplex>, outgoing: http.ClientRequest): void {
  a.upstream.inflight++
  tunnels.add(a.client)
  let closed = false
  const done = (): void => {
    if (closed) return
    closed = true
    a.upstream.inflight--
    tunnels.delete(a.client)
  }
  a.client.once('close', () => {
    done()
    outgoing.destroy()
  })
}

/** The upstream failed before it answered: counted against it, and the client gets a coded 502 or 504. */
function fail(a: Attempt, err: Error, timeout: boolean): void {
  const { ctx, client, upstream } = a
  if (a.answered) {
    client.destroy()
    return
  }
  a.answered = true
  ctx.upstreams.record(upstream, true)
  ctx.logger.warn(
    { requestId: a.requestId, upstream: upstream.origin, err: err.message },
    'upgrade: upstream connection failed',
  )
  sendRawError(
    client,
    timeout
      ? new UpstreamTimeoutError(upstream.origin, ctx.options.connectTimeoutMs, { cause: err })
      : new BadGatewayError(upstream.origin, (err as { code?: string }).code ?? 'connection error', {
          cause: err,
        }),
  )
}

/** A 101: the answer's head to the client, then bytes both ways untouched until either side closes. */
function openTunnel(
  a: Attempt,
  res: IncomingMessage,
  upSocket: net.Socket,
  upHead: Buffer,
  head: Buffer,
): void {
  const { ctx, client } = a
  a.answered = true
  upSocket.setTimeout(0)
  ctx.upstreams.record(a.upstream, false)
  upSocket.on('error', () => client.destroy())
  upSocket.once('close', () => client.destroy())
  client.once('close', () => upSocket.destroy())
  client.write(
    responseHead(res, ctx, a.requestId, ['connection', 'upgrade', 'upgrade', res.headers.upgrade ?? '']),
  )
  if (upHead.length > 0) client.write(upHead)
  if (head.length > 0) upSocket.write(head)
  client.pipe(upSocket)
  upSocket.pipe(client)
}

/** Refused: an ordinary response. Relay it and close; the client connection never becomes a tunnel. */
function relayRefused(a: Attempt, res: IncomingMessage): void {
  const { ctx, client } = a
  a.answered = true
  res.socket.setTimeout(ctx.options.bodyTimeoutMs)
  client.resume() // whatever the client sent after its request is never forwarded: dropped
  ctx.upstreams.record(
    a.upstream,
    res.statusCode !== undefined && res.statusCode >= 502 && res.statusCode <= 504,
  )
  const length = res.headers['content-length']
  const framing =
    length !== undefined ? [] : res.headers['transfer-encoding'] ? ['transfer-encoding', 'chunked'] : []
  client.write(responseHead(res, ctx, a.requestId, [...framing, 'connection', 'close']))
  res.on('data', (chunk: Buffer) => {
    if (framing.length) client.write(`${chunk.length.toString(16)}\r\n`)
    client.write(chunk)
    if (framing.length) client.write('\r\n')
  })
  res.once('end', () => (framing.length ? client.end('0\r\n\r\n') : client.end()))
  res.once('error', () => client.destroy())
}
