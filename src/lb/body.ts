/**
 * The request body on its way up: a pass-through that counts bytes (413 past the limit, for chunked bodies
 * whose size is not announced), restarts the client body timeout on every chunk (408 when the client goes
 * silent), and is connected to the client request only once an upstream connection exists, so a request
 * whose connection could not be made still has its whole body for the next upstream.
 */
import type { IncomingMessage } from 'node:http'
import { Transform, type TransformCallback } from 'node:stream'
import { BodyTooLargeError, ClientTimeoutError } from './errors.js'

export class BodyMeter extends Transform {
  bytes = 0
  readonly #limit: number
  readonly #timer: NodeJS.Timeout

  constructor(limit: number, timeoutMs: number) {
    super()
    this.#limit = limit
    this.#timer = setTimeout(() => {
      this.destroy(new ClientTimeoutError(`the client sent no request body data for ${timeoutMs} ms`))
    }, timeoutMs)
    this.#timer.unref()
    this.once('close', () => clearTimeout(this.#timer))
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    if (this.bytes > this.#limit) {
      done(new BodyTooLargeError(this.#limit))
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

/**
 * Reads a small body whole (it was announced with Content-Length within the retry buffer size), so it can be
 * sent again on a retry. Rejects with ClientTimeoutError when the client goes silent.
 */
export async function readSmallBody(
  req: IncomingMessage,
  length: number,
  timeoutMs: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const buf = Buffer.allocUnsafe(length)
    let at = 0
    const timer = setTimeout(() => {
      cleanup()
      reject(new ClientTimeoutError(`the client sent no request body data for ${timeoutMs} ms`))
    }, timeoutMs)
    const onData = (chunk: Buffer): void => {
      timer.refresh()
      const n = Math.min(chunk.length, length - at)
      chunk.copy(buf, at, 0, n)
      at += n
    }
    const onEnd = (): void => {
      cleanup()
      resolve(at === length ? buf : buf.subarray(0, at))
    }
    const onClose = (): void => {
      cleanup()
      reject(new Error('the client closed the connection while sending the body'))
    }
    const cleanup = (): void => {
      clearTimeout(timer)
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('close', onClose)
      req.off('error', onClose)
    }
    req.on('data', onData)
    req.once('end', onEnd)
    req.once('close', onClose)
    req.once('error', onClose)
  })
}
