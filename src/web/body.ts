/**
 * Request bodies on the web server: which types are parsed, and how a body that is refused is let go.
 *
 * - JSON only. `application/json` and the `+json` types (`application/merge-patch+json`) are parsed as JSON
 *   (Fastify's parser: proto poisoning refused, FLEET_BODY_LIMIT). Fastify's default `text/plain` parser is
 *   removed: a `text/plain` body, which a page of another site may send without a CORS preflight (a
 *   `<form enctype="text/plain">`, a `fetch`), is refused with `415 FLEET_E_HTTP_UNSUPPORTED_MEDIA_TYPE` like
 *   any type without a parser, before a route sees it. A route that takes another type registers a parser in
 *   its own scope (the shop's image upload takes image/jpeg, image/png, image/webp).
 * - An answer before the body was read whole (413 past the limit, 415, 404) lets the client finish sending
 *   (`lingerOnUnreadBody`), as nginx's lingering close: closing a socket with unread bytes makes the kernel
 *   send a reset, and the client (or the load balancer, still writing the body) meets EPIPE or ECONNRESET
 *   instead of reading the answer (nodejs/node#12339).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

/** A `+json` media type (RFC 6839), parameters allowed: application/merge-patch+json; charset=utf-8. */
const JSON_SUFFIX = /^application\/[\w!#$%&'*+.^`|~-]+\+json(?:;|$)/

/** Installs the JSON-only body parsing on `app` (before its routes: child scopes inherit it). */
export function installBodyParsing(app: FastifyInstance): void {
  app.removeContentTypeParser('text/plain')
  app.addContentTypeParser(JSON_SUFFIX, { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'))
}

/** How long a refused body may go on arriving before the connection is cut. */
export const LINGER_MS = 5_000

/**
 * After an answer sent before the request body was read whole: reads and drops the rest of the body, for
 * up to LINGER_MS, then the connection may carry the next request (Node's parser knows where the body
 * ends); a body still arriving after LINGER_MS is cut. The `Connection: close` Fastify sets after a body it
 * refused (413) is taken off: Node would close the socket right after the answer, with the body unread.
 */
export function lingerOnUnreadBody(request: FastifyRequest, reply: FastifyReply, bodyRefused: boolean): void {
  const req = request.raw
  // readableEnded: the body was read to its end (an injected request, app.inject(), never sets `complete`).
  if (req.complete || req.readableEnded || req.destroyed) return
  if (bodyRefused && reply.getHeader('connection') === 'close') reply.removeHeader('connection')
  req.unpipe()
  req.resume()
  const socket = req.socket
  // An injected request's socket is a stand-in without destroy(): it ends with its payload anyway.
  const timer = setTimeout(() => socket.destroy?.(), LINGER_MS)
  timer.unref()
  // Both listeners go with the first of the two events: a keep-alive connection must not collect them.
  const done = (): void => {
    clearTimeout(timer)
    req.off('end', done)
    socket.off('close', done)
  }
  req.once('end', done)
  socket.once('close', done)
}
