/**
 * How the upstream pools connect: undici's own connector, plus one rule for early answers. An upstream may
 * answer before it read the whole request body (a 413 past its body limit, a 401) and close the connection
 * (RFC 9112 9.6 lets it). Its answer is then in the LB's receive buffer while the LB still writes the body,
 * and the next write fails with EPIPE or ECONNRESET. Node destroys a socket on a failed write before it
 * reads what is waiting (nodejs/node#12339), so undici would report `write EPIPE`, the client would get a
 * 502 for a request the upstream did answer, and the upstream a failure against its health.
 *
 * So a write the peer refused (EPIPE, ECONNRESET) is taken as done and the rest of the body is dropped: the
 * connection goes on reading. When the upstream did answer, undici reads that answer whole and ends the
 * request with it (then closes the connection: the response ended before the request), and the Exchange
 * relays it as any other. When it did not, the read side meets the reset or the end of the connection, and
 * undici reports that (ECONNRESET, `other side closed`): a 502 as before. HAProxy relays early answers the
 * same way.
 */
import type { Socket } from 'node:net'
import { buildConnector } from 'undici'

type WriteCallback = (err?: Error | null) => void

/** Write errors that mean the peer closed or reset the connection: nothing more can be sent, but its answer may wait. */
const PEER_GONE = new Set(['EPIPE', 'ECONNRESET'])

/** undici's connector (with the connect timeout) whose sockets keep reading after the peer refused a write. */
export function upstreamConnector(connectTimeoutMs: number): buildConnector.connector {
  const connect = buildConnector({ timeout: connectTimeoutMs })
  return (options, callback) => {
    connect(options, (...args: Parameters<buildConnector.Callback>) => {
      if (args[1]) readOnAfterPeerClose(args[1])
      callback(...args)
    })
  }
}

/**
 * Makes a failed write on `socket` whose error says the peer is gone (EPIPE, ECONNRESET) succeed, and every
 * later write succeed at once without sending: the socket is not destroyed by the write, its read side goes
 * on. Other write errors are reported as before.
 */
export function readOnAfterPeerClose(socket: Socket): void {
  const s = socket as Socket & {
    _write(chunk: unknown, encoding: BufferEncoding, cb: WriteCallback): void
    _writev(chunks: unknown, cb: WriteCallback): void
  }
  /** The peer refused a write: nothing more is sent. */
  let broken = false
  // Node passes a stream the same write callback every time: one wrapper per socket, made on the first write.
  let given: WriteCallback | undefined
  let guarded: WriteCallback = () => {}
  const guard = (cb: WriteCallback): WriteCallback => {
    if (cb !== given) {
      given = cb
      guarded = (err) => {
        if (err && PEER_GONE.has((err as { code?: string }).code ?? '')) {
          broken = true
          cb()
        } else cb(err)
      }
    }
    return guarded
  }
  const write = s._write
  const writev = s._writev
  s._write = function (chunk, encoding, cb) {
    if (broken) cb()
    else write.call(this, chunk, encoding, guard(cb))
  }
  s._writev = function (chunks, cb) {
    if (broken) cb()
    else writev.call(this, chunks, guard(cb))
  }
}
