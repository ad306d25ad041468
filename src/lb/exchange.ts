/**
 * One client request carried to an upstream and its response carried back: the undici dispatch handler of
 * every attempt. It streams both bodies with backpressure, retries what `retry.ts` allows on another
 * upstream, aborts the upstream request when the client goes away, and answers 502/503/504 with a JSON
 * body when there is nothing else to send.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { FleetError } from '../errors.js'
import type { BodyMeter } from './body.js'
import { BadGatewayError, BodyTooLargeError, ClientTimeoutError, UpstreamTimeoutError } from './errors.js'
import { clientResponseHeaders } from './headers.js'
import type { ProxyContext } from './proxy.js'
import { type FailureStage, mayRetry, type RetryContext } from './retry.js'
import type { Upstream } from './upstream.js'

type Body = Buffer | BodyMeter | null

export class Exchange implements Dispatcher.DispatchHandler {
  readonly #ctx: ProxyContext
  readonly #req: IncomingMessage
  readonly #res: ServerResponse
  readonly #headers: string[]
  readonly requestId: string
  readonly #retry: RetryContext
  readonly #startedAt: number
  /** Writes `100 Continue` to the client once an upstream connection exists (Expect: 100-continue). */
  #continuePending: boolean
  #makeBody: () => Body
  #body: Body = null
  #upstream: Upstream | undefined
  /** The first upstream tried; `#tried` lists every one, built only when there is a retry. */
  #first: Upstream | undefined
  #tried: Upstream[] | undefined
  #stage: FailureStage = 'connect'
  #abort: ((err?: Error) => void) | undefined
  #resume: (() => void) | undefined
  /** Resumes the upstream body once the client socket drained (made on the first backpressure). */
  #onDrain: (() => void) | undefined
  #done = false
  #retries = 0

  constructor(
    ctx: ProxyContext,
    req: IncomingMessage,
    res: ServerResponse,
    head: { readonly headers: string[]; readonly requestId: string },
    continuePending: boolean,
    retry: RetryContext,
    makeBody: () => Body,
  ) {
    this.#ctx = ctx
    this.#req = req
    this.#res = res
    this.#headers = head.headers
    this.requestId = head.requestId
    this.#continuePending = continuePending
    this.#retry = retry
    this.#makeBody = makeBody
    this.#startedAt = performance.now()
    // 'close' is emitted once per response: `on` spares the wrapper `once` allocates per request.
    res.on('close', this.#onClientClose)
  }

  /** Sends the request to `upstream` (the first attempt). */
  start(upstream: Upstream): void {
    this.#send(upstream)
  }

  #send(upstream: Upstream): void {
    this.#upstream = upstream
    if (this.#first === undefined) this.#first = upstream
    else {
      this.#tried ??= [this.#first]
      this.#tried.push(upstream)
    }
    this.#stage = 'connect'
    this.#abort = undefined
    this.#body = this.#makeBody()
    upstream.inflight++
    upstream.pool.dispatch(
      {
        path: this.#req.url ?? '/',
        method: this.#req.method ?? 'GET',
        headers: this.#headers,
        body: this.#body,
        idempotent: false,
        blocking: false,
        headersTimeout: this.#ctx.options.headersTimeoutMs,
        bodyTimeout: this.#ctx.options.bodyTimeoutMs,
      },
      this,
    )
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
    this.#abort?.(new Error('the client closed the connection'))
    if (this.#body && !Buffer.isBuffer(this.#body)) this.#body.destroy()
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort
    if (this.#done) {
      abort(new Error('the client closed the connection'))
      return
    }
    this.#stage = 'sent'
    const body = this.#body
    if (body && !Buffer.isBuffer(body)) {
      if (this.#continuePending) {
        this.#continuePending = false
        this.#res.writeContinue()
      }
      this.#req.pipe(body)
    }
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true
    const upstream = this.#upstream as Upstream
    this.#stage = 'response'
    this.#resume = resume
    this.#ctx.upstreams.record(upstream, statusCode >= 500)
    if (this.#done) return false
    const res = this.#res
    const headers = clientResponseHeaders(rawHeaders, this.#ctx.via, this.requestId)
    if (this.#ctx.closing || !this.#req.complete) res.shouldKeepAlive = false
    res.writeHead(statusCode, statusText, headers)
    return true
  }

  onData(chunk: Buffer): boolean {
    if (this.#done) return false
    const ok = this.#res.write(chunk)
    if (!ok) {
      this.#onDrain ??= () => this.#resume?.()
      this.#res.once('drain', this.#onDrain)
    }
    return ok
  }

  onComplete(): void {
    if (this.#done) {
      this.#finish()
      return
    }
    this.#done = true
    // An upstream that answered before reading the whole body: the connection cannot be reused safely.
    if (!this.#req.complete) this.#res.shouldKeepAlive = false
    this.#res.end()
    this.#finish()
  }

  onError(err: Error): void {
    const upstream = this.#upstream as Upstream
    const stage = this.#stage
    this.#finish()
    if (this.#done) return
    const clientFault = err instanceof ClientTimeoutError || err instanceof BodyTooLargeError
    if (!clientFault && stage !== 'response') this.#ctx.upstreams.record(upstream, true)
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
      this.#fail(err as FleetError, upstream, true)
      return
    }
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
    this.#fail(new BadGatewayError(upstream.origin, errInfo(err).message, { cause: err }), upstream)
  }

  #fail(err: FleetError, upstream: Upstream | undefined, close = false): void {
    this.#done = true
    this.#ctx.logger.warn(
      {
        requestId: this.requestId,
        upstream: upstream?.origin,
        code: err.code,
        err: errInfo(err.cause ?? err),
      },
      err.message,
    )
    this.#ctx.respondError(this.#res, err, this.requestId, close || !this.#req.complete)
  }

  /** Accounting for the end of one attempt (success or failure). */
  #finish(): void {
    const u = this.#upstream
    if (u) {
      u.inflight--
      this.#upstream = undefined
    }
  }
}

function errInfo(err: unknown): { message: string; code?: string } {
  const e = err as { message?: string; code?: string }
  return { message: e?.message ?? String(err), code: e?.code }
}
