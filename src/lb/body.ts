/**
 * Request bodies on their way up. A body is read into memory before any upstream is picked, up to
 * FLEET_LB_REQUEST_BUFFER_SIZE (as nginx's `proxy_request_buffering`), under a deadline for the whole
 * request and a cap on the bytes held across all clients: a client that trickles its body holds a socket of
 * the LB, never an upstream connection. A whole body can be sent again on a safe retry. A larger body is
 * streamed once its first FLEET_LB_REQUEST_BUFFER_SIZE arrived, through a BodyMeter, and only so many
 * bodies stream at once (FLEET_LB_MAX_STREAMED_BODIES).
 */
import type { IncomingMessage } from 'node:http'
import { Transform, type TransformCallback } from 'node:stream'
import { ClientTimeoutError, OverloadedError, RequestBodyTooLargeError } from './errors.js'

/** Bytes of request bodies held in memory, across all clients, and the streamed bodies in flight. */
export class BodyBudget {
  held = 0
  streams = 0
  readonly #memory: number
  readonly #maxStreams: number

  constructor(memory: number, maxStreams: number) {
    this.#memory = memory
    this.#maxStreams = maxStreams
  }

  take(bytes: number): boolean {
    if (this.held + bytes > this.#memory) return false
    this.held += bytes
    return true
  }

  give(bytes: number): void {
    this.held -= bytes
  }

  /** A slot for a streamed body; false when all are taken. */
  takeStream(): boolean {
    if (this.streams >= this.#maxStreams) return false
    this.streams++
    return true
  }

  giveStream(): void {
    this.streams--
  }
}

export interface BodyLimits {
  /** Read whole up to this many bytes; past it, resolve with what arrived so the rest can stream. */
  bufferSize: number
  /** The most a body may have (413 past it). */
  maxBodySize: number
  /** Longest silence between two chunks. */
  idleMs: number
  /** Epoch ms by which a body that fits the buffer must have arrived (whole): request start + timeout. */
  deadline: number
  requestTimeoutMs: number
  budget: BodyBudget
}

/** A body read whole (`complete`), or the first part of a larger one whose rest is still in `req`. */
export interface HeldBody {
  chunks: Buffer[]
  bytes: number
  complete: boolean
}

/**
 * Reads `req`'s body into memory until it ends or passes `bufferSize` (then `req` is paused). Rejects with
 * a coded error (413, 408, 503) or, when the client goes away, a plain Error. The caller gives the held
 * bytes back to the budget when the exchange ends.
 */
export function holdBody(req: IncomingMessage, limits: BodyLimits): Promise<HeldBody> {
  return new Promise((resolve, reject) => {
    const held: HeldBody = { chunks: [], bytes: 0, complete: false }
    let settled = false
    const finish = (err: Error | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(idle)
      clearTimeout(deadline)
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('close', onClose)
      req.off('error', onClose)
      if (err) {
        limits.budget.give(held.bytes)
        held.bytes = 0
        held.chunks.length = 0
        reject(err)
      } else resolve(held)
    }
    const idle = setTimeout(
      () => finish(new ClientTimeoutError(`the client sent no request body data for ${limits.idleMs} ms`)),
      limits.idleMs,
    )
    const deadline = setTimeout(
      () =>
        finish(
          new ClientTimeoutError(`the request did not arrive whole within ${limits.requestTimeoutMs} ms`),
        ),
      Math.max(0, limits.deadline - Date.now()),
    )
    const onData = (chunk: Buffer): void => {
      if (held.bytes + chunk.length > limits.maxBodySize) {
        finish(new RequestBodyTooLargeError(limits.maxBodySize))
        return
      }
      if (!limits.budget.take(chunk.length)) {
        finish(new OverloadedError('the load balancer holds as many request bodies as it may; retry later'))
        return
      }
      held.chunks.push(chunk)
      held.bytes += chunk.length
      idle.refresh()
      if (held.bytes > limits.bufferSize) {
        // Past the buffer: the rest streams. The deadline no longer applies (a large upload may take long).
        req.pause()
        finish(undefined)
      }
    }
    const onEnd = (): void => {
      held.complete = true
      finish(undefined)
    }
    const onClose = (): void => finish(new Error('the client closed the connection while sending the body'))
    req.on('data', onData)
    req.once('end', onEnd)
    req.once('close', onClose)
    req.once('error', onClose)
  })
}

/** A whole held body as one Buffer (one chunk: no copy). */
export function wholeBody(held: HeldBody): Buffer {
  return held.chunks.length === 1 ? (held.chunks[0] as Buffer) : Buffer.concat(held.chunks, held.bytes)
}

/**
 * The streamed rest of a large body: a pass-through that starts with the held part, counts bytes (413 past
 * the limit, for chunked bodies whose size is not announced) and restarts the client body timeout on
 * every chunk (408 when the client goes silent). It always has an 'error' listener: its owner learns of
 * errors through `onError`, whether or not undici is reading it yet.
 */
export class BodyMeter extends Transform {
  bytes = 0
  readonly #limit: number
  readonly #timer: NodeJS.Timeout

  constructor(limit: number, timeoutMs: number, head: readonly Buffer[], onError: (err: Error) => void) {
    super()
    this.#limit = limit
    this.#timer = setTimeout(() => {
      this.destroy(new ClientTimeoutError(`the client sent no request body data for ${timeoutMs} ms`))
    }, timeoutMs)
    this.#timer.unref()
    this.once('close', () => clearTimeout(this.#timer))
    this.on('error', onError)
    for (const chunk of head) this.write(chunk)
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    if (this.bytes > this.#limit) {
      done(new RequestBodyTooLargeError(this.#limit))
      return
    }
    this.#timer.refresh()
    done(null, chunk)
  }

  override _flush(done: TransformCallback): void {
    clearTimeout(this.#timer)
    done()
  }
}
