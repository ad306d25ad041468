/**
 * One client request carried to an upstream and its response carried back. Each attempt is a `Try`, the
 * undici dispatch handler of one upstream request; the Exchange streams both bodies with backpressure,
 * retries what `retry.ts` allows on another upstream, aborts the upstream side when the client goes away,
 * and answers 502/503/504 with a JSON body when there is nothing else to send.
 *
 * Per-try timeout and hedging (as Envoy's `per_try_timeout` with `hedge_on_per_try_timeout`): when a request
 * that may safely be sent twice (`mayRetry(..., 'sent')`: idempotent, or replayable with an
 * Idempotency-Key) has no response headers after FLEET_LB_TRY_TIMEOUT, a second try goes to another
 * upstream while the first keeps going; the first response to arrive wins and the other try is aborted.
 * Hedges count as retries: FLEET_LB_RETRIES and the retry budget bound them. So one hung upstream costs a
 * client about the try timeout, not the headers timeout.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { FleetError } from '../errors.js'
import type { BodyMeter } from './body.js'
import {
  BadGatewayError,
  BadRequestError,
  BodyTooLargeError,
  ClientTimeoutError,
  UpstreamTimeoutError,
} from './errors.js'
import { clientResponseHeaders } from './headers.js'
import type { ProxyContext } from './proxy.js'
import { type FailureStage, mayRetry, type RetryContext } from './retry.js'
import type { Upstream } from './upstream.js'

type Body = Buffer | BodyMeter | null

const LOST = new Error('another try answered first')

/** One attempt on one upstream: forwards undici's callbacks to its Exchange. */
class Try implements Dispatcher.DispatchHandler {
  readonly exchange: Exchange
  readonly upstream: Upstream
  readonly body: Body
  stage: FailureStage = 'connect'
  abort: ((err?: Error) => void) | undefined
  resume: (() => void) | undefined
  timer: NodeJS.Timeout | undefined
  /** Its per-try timeout passed without response headers. */
  slow = false
  /** Aborted by the exchange (another try won, or the client left): its error is expected. */
  cancelled = false
  ended = false

  constructor(exchange: Exchange, upstream: Upstream, body: Body) {
    this.exchange = exchange
    this.upstream = upstream
    this.body = body
  }

  /** Aborts the upstream request (now, or as soon as it connects). */
  cancel(err: Error): void {
    this.cancelled = true
    this.abort?.(err)
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort
    this.exchange.connected(this)
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    return this.exchange.headers(this, statusCode, rawHeaders, resume, statusText)
  }

  onData(chunk: Buffer): boolean {
    return this.exchange.data(this, chunk)
  }

  onComplete(): void {
    this.exchange.complete(this)
  }

  onError(err: Error): void {
    this.exchange.error(this, err)
  }
}

export class Exchange {
  readonly #ctx: ProxyContext
  readonly #req: IncomingMessage
  readonly #res: ServerResponse
  readonly #headers: string[]
  /** The request target in origin form. */
  readonly #url: string
  readonly requestId: string
  readonly #retry: RetryContext
  readonly #startedAt: number
  /** Hedge after this long without response headers (0: never; only for requests safe to send twice). */
  readonly #tryTimeoutMs: number
  /** A body per try: the held Buffer again, or the one stream (its errors go to `onError`). */
  #makeBody: (onError: (err: Error) => void) => Body
  /** The try whose response goes to the client. */
  #winner: Try | undefined
  /** The first try; `#live` holds the tries in flight, `#tried` their upstreams (built on a second try). */
  #first: Try | undefined
  #live: Try[] | undefined
  #tried: Upstream[] | undefined
  /** Resumes the upstream body once the client socket drained (made on the first backpressure). */
  #onDrain: (() => void) | undefined
  #done = false
  #retries = 0

  constructor(
    ctx: ProxyContext,
    req: IncomingMessage,
    res: ServerResponse,
    url: string,
    head: { readonly headers: string[]; readonly requestId: string },
    retry: RetryContext,
    makeBody: (onError: (err: Error) => void) => Body,
  ) {
    this.#ctx = ctx
    this.#req = req
    this.#res = res
    this.#url = url
    this.#headers = head.headers
    this.requestId = head.requestId
    this.#retry = retry
    this.#makeBody = makeBody
    this.#startedAt = performance.now()
    this.#tryTimeoutMs =
      ctx.options.tryTimeoutMs > 0 && mayRetry(retry, 'sent') ? ctx.options.tryTimeoutMs : 0
    // 'close' is emitted once per response: `on` spares the wrapper `once` allocates per request.
    res.on('close', this.#onClientClose)
  }

  /** Sends the request to `upstream` (the first try). */
  start(upstream: Upstream): void {
    this.#send(upstream)
  }

  /** The tries still in flight (the common single try needs no array). */
  #inFlight(): Try[] {
    if (this.#live) return this.#live.filter((t) => !t.ended)
    return this.#first && !this.#first.ended ? [this.#first] : []
  }

  #send(upstream: Upstream): void {
    const t: Try = new Try(
      this,
      upstream,
      this.#makeBody((err) => this.#bodyFailed(t, err)),
    )
    if (this.#first === undefined) this.#first = t
    else {
      this.#live ??= [this.#first]
      this.#live.push(t)
      this.#tried ??= [this.#first.upstream]
      this.#tried.push(upstream)
    }
    upstream.inflight++
    if (this.#tryTimeoutMs > 0) {
      t.timer = setTimeout(() => this.#hedge(t), this.#tryTimeoutMs)
      t.timer.unref()
    }
    upstream.pool.dispatch(
      {
        path: this.#url,
        method: this.#req.method ?? 'GET',
        headers: this.#headers,
        body: t.body,
        idempotent: false,
        blocking: false,
        headersTimeout: this.#ctx.options.headersTimeoutMs,
        bodyTimeout: this.#ctx.options.bodyTimeoutMs,
      },
      t,
    )
  }

  /** The try timeout of `t` passed with no response headers: send the request to another upstream too. */
  #hedge(t: Try): void {
    if (t.ended || t.stage === 'response' || this.#done || this.#winner) return
    t.slow = true
    if (this.#retries >= this.#ctx.options.retries) return
    const tried = this.#tried ?? [t.upstream]
    const next = this.#ctx.upstreams.pick(this.#ctx.now(), tried)
    // Only another upstream: a second request to the one that hangs would wait behind the same fault.
    if (!next || tried.includes(next)) return
    if (!this.#ctx.budget.tryRetry()) {
      this.#ctx.metrics.retriesDenied.inc()
      return
    }
    this.#retries++
    this.#ctx.metrics.retries.labels('try-timeout').inc()
    this.#ctx.logger.info(
      {
        requestId: this.requestId,
        upstream: t.upstream.origin,
        next: next.origin,
        afterMs: this.#tryTimeoutMs,
      },
      'no response within the try timeout: hedging on another upstream',
    )
    this.#send(next)
  }

  readonly #onClientClose = (): void => {
    const finished = this.#res.writableFinished
    this.#ctx.metrics.observe(
      finished ? this.#res.statusCode : 0,
      (performance.now() - this.#startedAt) / 1000,
    )
    if (this.#done || finished) return
    // The client went away before its response was complete: free the upstream side at once.
    this.#done = true
    this.#ctx.metrics.clientAborts.inc()
    for (const t of this.#inFlight()) {
      t.cancel(new Error('the client closed the connection'))
      if (t.body && !Buffer.isBuffer(t.body)) t.body.destroy()
    }
  }

  connected(t: Try): void {
    if (this.#done || t.cancelled || (this.#winner && this.#winner !== t)) {
      t.cancel(this.#done ? new Error('the client closed the connection') : LOST)
      return
    }
    t.stage = 'sent'
    const body = t.body
    if (body && !Buffer.isBuffer(body)) this.#req.pipe(body)
  }

  headers(t: Try, statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true
    clearTimeout(t.timer)
    t.stage = 'response'
    t.resume = resume
    this.#ctx.upstreams.record(t.upstream, GATEWAY_FAILURES.has(statusCode), statusCode)
    if (this.#done || this.#winner) {
      t.cancelled = true
      return false
    }
    this.#winner = t
    if (this.#live) {
      for (const other of this.#inFlight()) {
        if (other === t) continue
        clearTimeout(other.timer)
        // Slower than the try timeout while another upstream answered: an upstream fault.
        if (other.slow) this.#ctx.upstreams.record(other.upstream, true)
        other.cancel(LOST)
      }
    }
    const res = this.#res
    const headers = clientResponseHeaders(rawHeaders, this.#ctx.via, this.requestId)
    if (this.#ctx.closing || !this.#req.complete) res.shouldKeepAlive = false
    res.writeHead(statusCode, statusText, headers)
    return true
  }

  data(t: Try, chunk: Buffer): boolean {
    if (this.#done || t !== this.#winner) return false
    const ok = this.#res.write(chunk)
    if (!ok) {
      this.#onDrain ??= () => this.#winner?.resume?.()
      this.#res.once('drain', this.#onDrain)
    }
    return ok
  }

  complete(t: Try): void {
    this.#end(t)
    if (this.#done || t !== this.#winner) return
    this.#done = true
    // An upstream that answered before reading the whole body: the connection cannot be reused safely.
    if (!this.#req.complete) this.#res.shouldKeepAlive = false
    this.#res.end()
  }

  error(t: Try, err: Error): void {
    const { upstream, stage } = t
    this.#end(t)
    if (this.#done || (t.cancelled && t !== this.#winner)) return
    const clientFault = clientError(err)
    // Passive health hears only of faults of the upstream itself, never of what a client sent.
    if (!clientFault && stage !== 'response' && upstreamFault(err)) this.#ctx.upstreams.record(upstream, true)
    if (stage === 'response' || this.#res.headersSent) {
      // Bytes of the response already went to the client: the only honest signal left is a cut connection.
      this.#done = true
      this.#ctx.logger.warn(
        { requestId: this.requestId, upstream: upstream.origin, err: errInfo(err) },
        'upstream response cut short',
      )
      this.#res.destroy()
      return
    }
    if (clientFault) {
      this.#fail(clientFault, upstream, clientFault instanceof ClientTimeoutError)
      return
    }
    // A hedge is still on its way: its answer is the client's.
    if (this.#live && this.#inFlight().length > 0) return
    const code = (err as { code?: string }).code
    if (code === 'UND_ERR_HEADERS_TIMEOUT') {
      this.#fail(
        new UpstreamTimeoutError(upstream.origin, this.#ctx.options.headersTimeoutMs, { cause: err }),
        upstream,
      )
      return
    }
    if (this.#retries < this.#ctx.options.retries && mayRetry(this.#retry, stage)) {
      const next = this.#ctx.upstreams.pick(this.#ctx.now(), this.#tried ?? [upstream])
      if (next && this.#ctx.budget.tryRetry()) {
        this.#retries++
        this.#ctx.metrics.retries.labels(stage).inc()
        this.#ctx.logger.info(
          {
            requestId: this.requestId,
            upstream: upstream.origin,
            next: next.origin,
            stage,
            err: errInfo(err),
          },
          'retrying on another upstream',
        )
        this.#send(next)
        return
      }
      if (next) this.#ctx.metrics.retriesDenied.inc()
    }
    this.#fail(
      new BadGatewayError(upstream.origin, errInfo(err).code ?? 'connection error', { cause: err }),
      upstream,
    )
  }

  /** The streamed request body failed (the client went silent or sent too much), read or not yet. */
  #bodyFailed(t: Try, err: Error): void {
    const fault = clientError(err)
    // Aborting a try destroys its body too: only the client's own faults, on the live try, matter here.
    if (this.#done || !fault || (t.ended && t !== this.#winner)) return
    if (this.#res.headersSent) {
      this.#done = true
      for (const other of this.#inFlight()) other.cancel(LOST)
      this.#res.destroy()
      return
    }
    this.#fail(fault, t.upstream, fault instanceof ClientTimeoutError)
  }

  #fail(err: FleetError, upstream: Upstream | undefined, close = false): void {
    this.#done = true
    for (const t of this.#inFlight()) t.cancel(LOST)
    this.#ctx.logger.warn(
      {
        requestId: this.requestId,
        upstream: upstream?.origin,
        code: err.code,
        err: errInfo(err.cause ?? err),
      },
      err.message,
    )
    // An unread rest of the body is drained (respondError), so the client gets to read this answer.
    this.#ctx.respondError(this.#res, err, this.requestId, close)
  }

  /** Accounting for the end of one try (success or failure). */
  #end(t: Try): void {
    if (t.ended) return
    t.ended = true
    clearTimeout(t.timer)
    t.upstream.inflight--
    // A streamed body this try never sent (its connection failed) must not time out later on its own.
    if (t.body && !Buffer.isBuffer(t.body) && t !== this.#winner) t.body.destroy()
  }
}

/** Upstream answers that say the upstream itself failed (Envoy's gateway failures); a 500 may be the client's doing. */
const GATEWAY_FAILURES = new Set([502, 503, 504])

/** Error codes of a failed connection, exchange or response parse on the upstream side. */
const UPSTREAM_CODES = new Set([
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_INFO',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
])

/** True for a fault of the upstream or of the path to it (system errors like ECONNRESET, undici's socket errors, a bad response). */
function upstreamFault(err: Error): boolean {
  const code = (err as { code?: string }).code
  if (!code) return false
  return UPSTREAM_CODES.has(code) || code.startsWith('HPE_') || /^E[A-Z]+$/.test(code)
}

/** Client errors that undici reports while sending a request: the request was the problem, not the upstream. */
const CLIENT_CODES = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
])

/** The coded client error for `err` when the client caused it, else undefined. */
function clientError(err: Error): FleetError | undefined {
  if (err instanceof ClientTimeoutError || err instanceof BodyTooLargeError) return err
  const code = (err as { code?: string }).code
  if (code && CLIENT_CODES.has(code))
    return new BadRequestError(`the request cannot be forwarded: ${err.message}`, { cause: err })
  return undefined
}

function errInfo(err: unknown): { message: string; code?: string } {
  const e = err as { message?: string; code?: string }
  return { message: e?.message ?? String(err), code: e?.code }
}
