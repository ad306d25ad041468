/**
 * The request side of the load balancer: checks what Node's parser lets through (two Host headers,
 * conflicting lengths, HTTP/1.0 with Transfer-Encoding, methods a reverse proxy does not forward), enforces
 * the body size limit, prepares the body (held when small so a safe retry can resend it, streamed
 * otherwise), picks an upstream and hands the request to an Exchange.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { type FleetError, isFleetError } from '../errors.js'
import type { Logger } from '../log.js'
import { BodyMeter, readSmallBody } from './body.js'
import {
  BadRequestError,
  BodyTooLargeError,
  MethodNotAllowedError,
  NoUpstreamError,
  ShuttingDownError,
} from './errors.js'
import { Exchange } from './exchange.js'
import { upstreamRequestHead } from './headers.js'
import type { LbMetrics } from './metrics.js'
import type { LoadBalancerOptions } from './options.js'
import type { RetryBudget } from './retry.js'
import type { UpstreamSet } from './upstream-set.js'

/** What every exchange shares. */
export interface ProxyContext {
  readonly options: LoadBalancerOptions
  readonly upstreams: UpstreamSet
  readonly budget: RetryBudget
  readonly metrics: LbMetrics
  readonly logger: Logger
  /** Our name in `Via`. */
  readonly via: string
  readonly now: () => number
  readonly closing: boolean
  respondError(res: ServerResponse, err: FleetError, requestId: string | undefined, close?: boolean): void
}

const NOT_FORWARDED = new Set(['CONNECT', 'TRACE'])

const noBody = (): null => null

/** Handles one client request (`continuePending`: the client waits for `100 Continue`). */
export function proxyRequest(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  continuePending: boolean,
): void {
  const method = req.method ?? 'GET'
  if (ctx.closing) {
    ctx.respondError(res, new ShuttingDownError(), undefined, true)
    return
  }
  if (NOT_FORWARDED.has(method)) {
    ctx.respondError(
      res,
      new MethodNotAllowedError(`${method} is not forwarded by the load balancer`),
      undefined,
      true,
    )
    return
  }
  let head: ReturnType<typeof upstreamRequestHead>
  try {
    head = upstreamRequestHead(req.rawHeaders, req.socket.remoteAddress ?? '', `${req.httpVersion}`, ctx.via)
  } catch (err) {
    ctx.respondError(res, err as FleetError, undefined, true)
    return
  }
  if (head.chunked && req.httpVersionMajor === 1 && req.httpVersionMinor === 0) {
    // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing; never reuse the connection.
    const err = new BadRequestError('Transfer-Encoding is not allowed in an HTTP/1.0 request')
    ctx.respondError(res, err, undefined, true)
    return
  }
  const length = head.contentLength === undefined ? -1 : Number(head.contentLength)
  if (length > ctx.options.maxBodySize) {
    ctx.respondError(res, new BodyTooLargeError(ctx.options.maxBodySize), head.requestId, true)
    return
  }
  const hasBody = length > 0 || head.chunked
  const now = ctx.now()
  const upstream = ctx.upstreams.pick(now)
  if (!upstream) {
    ctx.respondError(res, new NoUpstreamError(), head.requestId, hasBody)
    return
  }
  ctx.budget.request(now)
  const retry = {
    method,
    hasBody,
    replayable: !hasBody || (length >= 0 && length <= ctx.options.retryBufferSize),
    idempotencyKey: head.idempotencyKey,
  }
  if (!hasBody) {
    new Exchange(ctx, req, res, head, false, retry, noBody).start(upstream)
    return
  }
  if (retry.replayable) {
    if (continuePending) res.writeContinue()
    readSmallBody(req, length, ctx.options.clientBodyTimeoutMs).then(
      (body) => {
        if (res.destroyed) return
        const t = ctx.now()
        const next = upstream.eligible(t) ? upstream : ctx.upstreams.pick(t)
        if (!next) {
          ctx.respondError(res, new NoUpstreamError(), head.requestId)
          return
        }
        new Exchange(ctx, req, res, head, false, retry, () => body).start(next)
      },
      (err: Error) => {
        if (isFleetError(err)) ctx.respondError(res, err, head.requestId, true)
        else res.destroy()
      },
    )
    return
  }
  const { maxBodySize, clientBodyTimeoutMs } = ctx.options
  new Exchange(
    ctx,
    req,
    res,
    head,
    continuePending,
    retry,
    () => new BodyMeter(maxBodySize, clientBodyTimeoutMs),
  ).start(upstream)
}
