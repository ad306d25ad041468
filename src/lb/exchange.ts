/**
 * One client request carried to an upstream and its response carried back. Each attempt is a `Try`
 * (try.ts: its states and the moves between them); the Exchange chooses among its tries, streams both bodies
 * with backpressure, retries what faults.ts calls retryable on another upstream within the retry budget,
 * aborts the upstream side when the client goes away, and answers 502/503/504 with a JSON body when there
 * is nothing else to send.
 *
 * Per-try timeout and hedging (as Envoy's `per_try_timeout` with `hedge_on_per_try_timeout`): when a request
 * that may safely be sent twice (`mayRetry(..., 'sent')`: idempotent, or replayable with an
 * Idempotency-Key) has no response headers after FLEET_LB_TRY_TIMEOUT, a second try goes to another
 * upstream while the first keeps going; the first response to arrive wins and the other try is aborted.
 * Hedges count as retries: FLEET_LB_RETRIES and the retry budget bound them. So one hung upstream costs a
 * client about the try timeout, not the headers timeout.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FleetError } from '../errors.js'
import { BadGatewayError, ClientTimeoutError, UpstreamTimeoutError } from './errors.js'
import { classify, clientError, isGatewayFailure } from './faults.js'
import { clientResponseHeaders } from './headers.js'
import type { ProxyContext } from './proxy.js'
import { drainRequest } from './respond.js'
import { type FailureStage, mayRetry, type RetryContext } from './retry.js'
import { Try, type TryBody, type TryOwner, type TryState } from './try.js'
import type { Upstream } from './upstream.js'

const LOST = new Error('another try answered first')

export class Exchange implements TryOwner {
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
  readonly #makeBody: (onError: (err: Error) => void) => TryBody
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
    makeBody: (onError: (err: Error) => void) => TryBody,
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
    const waiting = t.state === 'connecting' || t.state === 'sent'
    if (!waiting || this.#done || this.#winner) return
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

  /** `t` has a connection: connecting -> sent, unless it is no longer wanted. */
  connected(t: Try): void {
    if (this.#done || t.state === 'cancelled' || (this.#winner && this.#winner !== t)) {
      t.cancel(this.#done ? new Error('the client closed the connection') : LOST)
      return
    }
    t.moveTo('sent')
    const body = t.body
    if (body && !Buffer.isBuffer(body)) this.#req.pipe(body)
  }

  /** Response headers of `t`: the first try to get them wins (sent -> streaming), the others are cancelled. */
  headers(t: Try, statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true
    clearTimeout(t.timer)
    t.resume = resume
    this.#ctx.upstreams.record(t.upstream, isGatewayFailure(statusCode), statusCode)
    if (this.#done || this.#winner) {
      // Too late: the exchange is over or another try won (and cancelled this one already).
      t.moveTo('cancelled')
      return false
    }
    this.#winner = t
    t.moveTo('streaming')
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
    // An answer before the whole body (an upstream's early 413) keeps the connection: complete() drains the
    // rest of the body, as for the LB's own early answers. Closing at once would reset a client still sending.
    if (this.#ctx.closing) res.shouldKeepAlive = false
    // HTTP/2 has no reason phrase (RFC 9113 8.3.2).
    if ('stream' in this.#req) res.writeHead(statusCode, headers)
    else res.writeHead(statusCode, statusText, headers)
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

  /** `t` ended with its whole response (streaming -> done; cancelled -> aborted). */
  complete(t: Try): void {
    this.#end(t)
    if (this.#done || t !== this.#winner) return
    this.#done = true
    // The upstream answered before it read the whole body (an early 413, a 401) and will read no more of it:
    // the rest is read and dropped for up to LINGER_MS, so the client gets to read the answer instead of a
    // reset, and the connection may carry its next request (as for the LB's own early answers).
    if (!this.#req.complete) drainRequest(this.#res)
    this.#res.end()
  }

  /** `t` failed in state `from` (-> failed; cancelled -> aborted): cut, answer, wait for a hedge, or retry. */
  error(t: Try, from: TryState, err: Error): void {
    this.#end(t)
    // A cancelled try's error is the abort itself (a cancelled try always means done or another winner).
    if (this.#done || from === 'cancelled') return
    const { upstream } = t
    const fault = classify(err, from, this.#retry)
    if (fault.upstreamFault) this.#ctx.upstreams.record(upstream, true)
    if (fault.kind === 'response-cut' || this.#res.headersSent) {
      // Bytes of the response already went to the client: the only honest signal left is a cut connection.
      this.#done = true
      this.#ctx.logger.warn(
        { requestId: this.requestId, upstream: upstream.origin, err: errInfo(err) },
        'upstream response cut short',
      )
      this.#res.destroy()
      return
    }
    if (fault.clientError) {
      this.#fail(fault.clientError, upstream, fault.clientError instanceof ClientTimeoutError)
      return
    }
    // A hedge is still on its way: its answer is the client's.
    if (this.#live && this.#inFlight().length > 0) return
    if (fault.kind === 'headers-timeout') {
      const timeout = this.#ctx.options.headersTimeoutMs
      this.#fail(new UpstreamTimeoutError(upstream.origin, timeout, { cause: err }), upstream)
      return
    }
    if (fault.retryable && this.#retryElsewhere(upstream, fault.stage, err)) return
    this.#fail(
      new BadGatewayError(upstream.origin, errInfo(err).code ?? 'connection error', { cause: err }),
      upstream,
    )
  }

  /** Sends the request again, to another upstream, when the retry count and the budget allow; true if sent. */
  #retryElsewhere(failed: Upstream, stage: FailureStage, err: Error): boolean {
    if (this.#retries >= this.#ctx.options.retries) return false
    const next = this.#ctx.upstreams.pick(this.#ctx.now(), this.#tried ?? [failed])
    if (!next) return false
    if (!this.#ctx.budget.tryRetry()) {
      this.#ctx.metrics.retriesDenied.inc()
      return false
    }
    this.#retries++
    this.#ctx.metrics.retries.labels(stage).inc()
    this.#ctx.logger.info(
      { requestId: this.requestId, upstream: failed.origin, next: next.origin, stage, err: errInfo(err) },
      'retrying on another upstream',
    )
    this.#send(next)
    return true
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

  /** Accounting for the end of one try (undici's last callback, whatever it was). */
  #end(t: Try): void {
    clearTimeout(t.timer)
    t.upstream.inflight--
    // A streamed body this try never sent (its connection failed) must not time out later on its own.
    if (t.body && !Buffer.isBuffer(t.body) && t !== this.#winner) t.body.destroy()
  }
}

function errInfo(err: unknown): { message: string; code?: string } {
  const e = err as { message?: string; code?: string }
  return { message: e?.message ?? String(err), code: e?.code }
}
