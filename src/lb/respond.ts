/**
 * Error answers of the load balancer: a JSON body with the stable code, the message and the request id,
 * on a ServerResponse or, for errors Node raises before there is one (bad framing, slow headers), as raw
 * bytes on the socket.
 */
import type { ServerResponse } from 'node:http'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FleetError } from '../errors.js'

export function errorBody(err: FleetError, requestId: string | undefined): string {
  return JSON.stringify({ error: { code: err.code, message: err.message, requestId } })
}

/** Sends `err` as the response; `close` asks the client to close the connection afterwards. */
export function sendError(
  res: ServerResponse,
  err: FleetError,
  requestId: string | undefined,
  options: { close?: boolean; retryAfterS?: number } = {},
): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = errorBody(err, requestId)
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  }
  if (requestId) headers['x-request-id'] = requestId
  if (options.retryAfterS !== undefined) headers['retry-after'] = options.retryAfterS
  // HTTP/2 has no Connection header (RFC 9113 8.2.2); a stream ends on its own.
  if (options.close && !(res.req && 'stream' in res.req)) {
    headers.connection = 'close'
    res.shouldKeepAlive = false
  }
  res.writeHead(err.statusCode, headers)
  res.end(body)
}

/** How long a connection may go on sending a body the LB already answered (then it is cut). */
export const LINGER_MS = 5_000

/**
 * After an early answer (413, 503, 404 before the body was read): reads and discards the rest of the body
 * so the client gets to read the answer, as nginx's lingering close does. Closing at once with unread
 * bytes makes the kernel send a reset, which often destroys the answer in the client's buffer. Once the
 * body ends the connection may carry the next request; a body that does not end within LINGER_MS is cut.
 */
export function drainRequest(res: ServerResponse): void {
  const req = res.req
  if (!req || req.complete) return
  req.unpipe()
  req.resume()
  const socket = req.socket
  const timer = setTimeout(() => socket.destroy(), LINGER_MS)
  timer.unref()
  // Both listeners go with the first of the two events: a keep-alive connection answered early many times
  // must not collect a 'close' listener per answer.
  const done = (): void => {
    clearTimeout(timer)
    req.off('end', done)
    socket.off('close', done)
  }
  req.once('end', done)
  socket.once('close', done)
}

/** Writes `err` as a complete HTTP/1.1 response on a raw socket and closes it. */
export function sendRawError(socket: Socket, err: FleetError): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const body = errorBody(err, undefined)
  socket.end(
    `HTTP/1.1 ${err.statusCode} ${STATUS_CODES[err.statusCode] ?? 'Error'}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  )
  socket.destroySoon()
}
