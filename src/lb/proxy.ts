/**
 * The request side of the load balancer: checks what Node's parser lets through (no Host, two Host
 * headers, a Host that is no host[:port], conflicting lengths, HTTP/1.0 with Transfer-Encoding, request
 * targets and methods a reverse proxy does not forward, the web servers' internal paths), enforces the body
 * size limit, reads the body (whole up to FLEET_LB_REQUEST_BUFFER_SIZE before any upstream is taken, see
 * body.ts), picks an upstream and hands the request to an Exchange.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { type FleetError, isFleetError } from '../errors.js'
import type { Logger } from '../log.js'
import { type BodyBudget, BodyMeter, holdBody, wholeBody } from './body.js'
import {
  MalformedRequestError,
  MethodNotAllowedError,
  NotFoundError,
  NoUpstreamError,
  OverloadedError,
  RequestBodyTooLargeError,
  ShuttingDownError,
} from './errors.js'
import { Exchange } from './exchange.js'
import { type UpstreamRequestHead, upstreamRequestHead } from './headers.js'
import type { LbMetrics } from './metrics.js'
import { type LoadBalancerOptions, normalizePath } from './options.js'
import type { RetryBudget } from './retry-budget.js'
import type { TryBody } from './try.js'
import type { UpstreamSet } from './upstream-set.js'

/** What every exchange shares. */
export interface ProxyContext {
  readonly options: LoadBalancerOptions
  readonly upstreams: UpstreamSet
  readonly budget: RetryBudget
  /** Request body bytes held and bodies streamed, across all clients. */
  readonly bodies: BodyBudget
  readonly metrics: LbMetrics
  readonly logger: Logger
  /** Our name in `Via`. */
  readonly via: string
  readonly now: () => number
  readonly closing: boolean
  respondError(res: ServerResponse, err: FleetError, requestId: string | undefined, close?: boolean): void
}

const NOT_FORWARDED = new Set(['CONNECT', 'TRACE'])

const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'

const noBody = (): null => null

/** True when `url` names one of the web servers' internal paths (or one below it), however it is spelled. */
function isInternal(url: string, internal: readonly string[]): boolean {
  if (internal.length === 0) return false
  const q = url.indexOf('?')
  let path = q < 0 ? url : url.slice(0, q)
  // The common path has nothing to decode or fold: a lower-case copy is enough.
  path = /[%/.]{2}|%|\/$|\/\./.test(path) ? normalizePath(path) : path.toLowerCase()
  for (const p of internal) if (path === p || path.startsWith(`${p}/`)) return true
  return false
}

/**
 * The request target in origin form (`/path?query`) for the upstream, or a coded error: `*` (OPTIONS, answered
 * here) and absolute-form targets (RFC 9112 3.2.2: a server must accept them) are turned into it.
 */
function originForm(url: string): string | MalformedRequestError {
  if (url.startsWith('/')) return url
  if (/^https?:\/\//i.test(url)) {
    try {
      const u = new URL(url)
      return `${u.pathname}${u.search}`
    } catch {
      // falls through to the error below
    }
  }
  return new MalformedRequestError(
    `the request target ${JSON.stringify(url.slice(0, 100))} is not a path (write /path?query)`,
  )
}

/** Handles one client request (`continuePending`: the client waits for `100 Continue`). */
export function proxyRequest(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  continuePending: boolean,
): void {
  const startedAt = Date.now()
  const method = req.method ?? 'GET'
  const url = admitTarget(ctx, req, res, method)
  if (url === undefined) return
  const head = admitHead(ctx, req, res)
  if (head === undefined) return
  const length = head.contentLength === undefined ? -1 : Number(head.contentLength)
  const { maxBodySize } = ctx.options
  if (length > maxBodySize) {
    ctx.respondError(res, new RequestBodyTooLargeError(maxBodySize), head.requestId, false)
    return
  }
  const request: Forwarded = { ctx, req, res, url, head, method }
  if (length > 0 || head.chunked) holdAndForward(request, continuePending, startedAt)
  else forward(request, true, noBody)
}

/** One admitted request on its way to an upstream. */
interface Forwarded {
  readonly ctx: ProxyContext
  readonly req: IncomingMessage
  readonly res: ServerResponse
  /** The target in origin form. */
  readonly url: string
  readonly head: UpstreamRequestHead
  readonly method: string
}

/**
 * The request target in origin form, or undefined once the request is answered here: the LB is closing,
 * the method is not forwarded, the target is `*` or not a path, or it names an internal path.
 */
function admitTarget(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
): string | undefined {
  if (ctx.closing) {
    ctx.respondError(res, new ShuttingDownError(), undefined, true)
    return undefined
  }
  if (NOT_FORWARDED.has(method)) {
    ctx.respondError(
      res,
      new MethodNotAllowedError(`${method} is not forwarded by the load balancer`),
      undefined,
      false,
    )
    return undefined
  }
  const raw = req.url ?? '/'
  if (raw === '*') {
    if (method === 'OPTIONS') {
      // About the server as a whole (RFC 9110 9.3.7): the LB answers for the service itself.
      res.writeHead(204, { allow: ALLOW, 'content-length': 0 }).end()
      if (!req.complete) req.resume()
    } else
      ctx.respondError(
        res,
        new MalformedRequestError('the request target * is only valid with OPTIONS'),
        undefined,
        false,
      )
    return undefined
  }
  const url = originForm(raw)
  if (typeof url !== 'string') {
    ctx.respondError(res, url, undefined, false)
    return undefined
  }
  if (isInternal(url, ctx.options.internalPaths)) {
    ctx.respondError(
      res,
      new NotFoundError(
        `${url.split('?')[0]} is served to the load balancer's health checks and to Prometheus, not on the public port`,
      ),
      undefined,
      false,
    )
    return undefined
  }
  return url
}

/**
 * The headers to send upstream, or undefined once the request is refused for its framing: two Host
 * headers or conflicting lengths, no Host in HTTP/1.1, Transfer-Encoding in HTTP/1.0.
 */
function admitHead(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
): UpstreamRequestHead | undefined {
  let head: UpstreamRequestHead
  const address = req.socket.remoteAddress ?? ''
  const trusted =
    ctx.options.trustedProxies?.check(address, req.socket.remoteFamily === 'IPv6' ? 'ipv6' : 'ipv4') ?? false
  try {
    const scheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'
    head = upstreamRequestHead(req.rawHeaders, address, `${req.httpVersion}`, ctx.via, trusted, scheme)
  } catch (err) {
    ctx.respondError(res, err as FleetError, undefined, true)
    return undefined
  }
  if (head.host === '' && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) {
    const err = new MalformedRequestError('an HTTP/1.1 request needs a Host header (RFC 9112 3.2)')
    ctx.respondError(res, err, head.requestId, true)
    return undefined
  }
  if (head.chunked && req.httpVersionMajor === 1 && req.httpVersionMinor === 0) {
    // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing; never reuse the connection.
    const err = new MalformedRequestError('Transfer-Encoding is not allowed in an HTTP/1.0 request')
    ctx.respondError(res, err, undefined, true)
    return undefined
  }
  // HTTP/2 frames a body without Content-Length: one is coming unless the headers ended the stream.
  // (An HTTP/1 request line may claim version 2.0: only a request of the HTTP/2 server has a stream.)
  const stream = (req as unknown as { stream?: { endAfterHeaders: boolean } }).stream
  if (stream && head.contentLength === undefined) head.chunked = !stream.endAfterHeaders
  return head
}

/** Takes an upstream and starts the exchange, or answers 503 when none may take the request. */
function forward(
  { ctx, req, res, url, head, method }: Forwarded,
  replayable: boolean,
  body: (onError: (err: Error) => void) => TryBody,
): void {
  const now = ctx.now()
  const upstream = ctx.upstreams.pick(now)
  if (!upstream) {
    ctx.respondError(res, new NoUpstreamError(), head.requestId, false)
    return
  }
  ctx.budget.request(now)
  const retry = { method, hasBody: body !== noBody, replayable, idempotencyKey: head.idempotencyKey }
  new Exchange(ctx, req, res, url, head, retry, body).start(upstream)
}

/**
 * Reads the body before an upstream is taken (a slow client holds only its own socket here), then forwards
 * it: whole when it fit the buffer (replayable), else streamed on from what was held, within the limit on
 * bodies streamed at once.
 */
function holdAndForward(request: Forwarded, continuePending: boolean, startedAt: number): void {
  const { ctx, req, res, head } = request
  const { maxBodySize, clientBodyTimeoutMs, requestBufferSize, clientRequestTimeoutMs } = ctx.options
  if (continuePending) res.writeContinue()
  holdBody(req, {
    bufferSize: requestBufferSize,
    maxBodySize,
    idleMs: clientBodyTimeoutMs,
    deadline: startedAt + clientRequestTimeoutMs,
    requestTimeoutMs: clientRequestTimeoutMs,
    budget: ctx.bodies,
  }).then(
    (held) => {
      if (res.destroyed || res.writableFinished) {
        ctx.bodies.give(held.bytes)
        return
      }
      res.once('close', () => ctx.bodies.give(held.bytes))
      if (held.complete) {
        const body = wholeBody(held)
        forward(request, true, () => body)
        return
      }
      if (!ctx.bodies.takeStream()) {
        const err = new OverloadedError(
          `more than ${ctx.options.maxStreamedBodies} request bodies larger than ${requestBufferSize} bytes are on their way; retry later`,
        )
        ctx.respondError(res, err, head.requestId, false)
        return
      }
      res.once('close', () => ctx.bodies.giveStream())
      forward(
        request,
        false,
        (onError) => new BodyMeter(maxBodySize, clientBodyTimeoutMs, held.chunks, onError),
      )
    },
    (err: Error) => {
      // 408 (a stalled client) closes at once; 413 and 503 let the client read the answer first.
      if (isFleetError(err)) ctx.respondError(res, err, head.requestId, err.statusCode === 408)
      else res.destroy()
    },
  )
}
