/**
 * Cached responses: the finished answer of a route (status, body bytes, ETag, headers) stored whole under the
 * tags of what it was built from, validated by the same tokens as cached queries and objects, and written to
 * the socket as bytes. A hit is one round trip (the read script) and no decoding: the body is a slice of
 * what Redis sent. A request whose If-None-Match names the entry's ETag gets a 304 from the head alone (the
 * script does not send the body).
 *
 * A response is built from cached objects and cached queries (`ctx.get`, `ctx.reader`, `ctx.run`) or from
 * PostgreSQL with declared tags (`ctx.depend`, then `ctx.db`). Each nested read hands its tags, with the tokens it was
 * validated against, to the response, so the response entry is refused when any of them changed before its
 * fill (no stale set) and invalidated by any write that invalidates one of them.
 *
 * The stored bytes: a 4-byte big-endian length, the head (latin1 lines: status, content type, ETag, then
 * header name and value pairs), then the body.
 */
import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Database, Queryable, Row } from '../db/database.js'
import { errorBody, type FleetError } from '../errors.js'
import type { CachedClass } from './cache.js'
import type { CachedQuery } from './cached-query.js'
import { ResponseSpecInvalidError } from './errors.js'
import type { CacheStatus, Depend, Encoded } from './fill.js'

/** What a response is built from: reads whose tags and tokens become the response entry's. */
export interface BuildContext {
  /** An instance of a cached class, through the object cache. */
  get<T extends object, I>(Class: CachedClass<T, I>, id: I): Promise<T>
  /** SELECTs through the query cache (writes and uncacheable statements make the response uncacheable). */
  readonly reader: Queryable
  /** PostgreSQL directly, as in an object's `assemble`: declare the tags with `depend` before reading. */
  readonly db: Pick<Database, 'query'>
  /** A declared cached query's rows. */
  run<R extends Row, P extends readonly unknown[]>(query: CachedQuery<R, P>, params: P): Promise<R[]>
  /** Declares tags before reading, from PostgreSQL directly, the data they cover. */
  readonly depend: Depend
}

/** A built answer: a body, or a client error (4xx) cached as its error answer. */
export interface BuiltResponse {
  /** HTTP status, 200 by default; only answers below 500 are cached (throw for a failure). */
  status?: number
  /** Sent as JSON (`toJSON` honoured); a string or Buffer is sent as it is. */
  body?: unknown
  /** A 4xx FleetError: cached as the answer the error handler would give (its status, `{ error: {...} }`). */
  error?: FleetError
  /** Default `application/json; charset=utf-8`. */
  contentType?: string
  /** A strong ETag in quotes; default: a digest of the body. */
  etag?: string
  /** More headers sent with every answer from this entry (lower-case names; no `set-cookie`). */
  headers?: Readonly<Record<string, string>>
}

/** How a route's answer is cached. `I` is what identifies one answer (an id, a validated query). */
export interface ResponseSpec<I> {
  /** Stable name, part of the key: change it when the body's shape changes (`shop.product-page@1`). */
  readonly name: string
  /** The part of the key that tells one answer from another (hashed when long). */
  key(input: I): string
  /** Tags known before building (the response also takes every tag of what it reads). */
  tags?(input: I): readonly string[]
  build(ctx: BuildContext, input: I): Promise<BuiltResponse>
  /** Fresh for this long, in ms (default FLEET_CACHE_TTL). */
  readonly ttl?: number
  /** Served stale this long past the TTL while it is rebuilt, in ms (default FLEET_CACHE_GRACE). */
  readonly grace?: number
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
/** Headers the runtime sets itself per answer, or that must never be shared between clients. */
const RESERVED = new Set(['content-length', 'content-type', 'etag', 'x-cache', 'set-cookie', 'connection'])

/**
 * Declares a cached response. Throws FLEET_E_CACHE_RESPONSE_INVALID for a name that cannot be a key.
 * @example
 * export const productPage = defineResponse<number>({
 *   name: 'shop.product-page@1',
 *   key: (id) => String(id),
 *   async build(ctx, id) {
 *     const page = await ctx.get(ProductPage, id)
 *     return page.exists ? { body: page } : { error: new ProductNotFoundError(id) }
 *   },
 * })
 * app.get('/api/products/:id', (request, reply) => deps.cache.respond(request, reply, productPage, request.params.id))
 */
export function defineResponse<I>(spec: ResponseSpec<I>): ResponseSpec<I> {
  if (typeof spec?.name !== 'string' || !NAME.test(spec.name))
    throw new ResponseSpecInvalidError(
      `cached response name ${JSON.stringify(spec?.name)} must be 1-100 letters, digits, '.', '_', '@' or '-'`,
    )
  if (typeof spec.build !== 'function' || typeof spec.key !== 'function')
    throw new ResponseSpecInvalidError(`cached response ${spec.name} needs key() and build()`)
  return Object.freeze({ ...spec })
}

/** The entry key of one answer: the spec's name and key, hashed when long. */
export function responseKey<I>(spec: ResponseSpec<I>, input: I): string {
  const k = spec.key(input)
  return `r:${spec.name}:${k.length <= 120 ? k : `#${createHash('sha256').update(k).digest('base64url')}`}`
}

/** Turns a built answer into the stored bytes, its ETag and head; a bad header or status throws. */
export function encodeResponse(name: string, built: BuiltResponse): Encoded {
  const error = built.error
  if (error && !(error.statusCode >= 400 && error.statusCode < 500))
    throw new ResponseSpecInvalidError(`cached response ${name}: only a 4xx error can be cached`, {
      cause: error,
    })
  const status = error ? error.statusCode : (built.status ?? 200)
  if (!Number.isInteger(status) || status < 200 || status >= 500 || status === 304)
    throw new ResponseSpecInvalidError(`cached response ${name}: status ${status} cannot be cached`)
  const b = error ? errorBody(error) : built.body
  const body = Buffer.isBuffer(b) ? b : Buffer.from(typeof b === 'string' ? b : (JSON.stringify(b) ?? 'null'))
  const etag = built.etag ?? `"${createHash('sha1').update(body).digest('base64url').slice(0, 20)}"`
  const lines = [String(status), built.contentType ?? 'application/json; charset=utf-8', etag]
  for (const [k, v] of Object.entries(built.headers ?? {})) {
    if (!HEADER_NAME.test(k) || RESERVED.has(k) || !HEADER_VALUE.test(v))
      throw new ResponseSpecInvalidError(
        `cached response ${name}: header ${JSON.stringify(k)} cannot be cached`,
      )
    lines.push(k, v)
  }
  if (!HEADER_VALUE.test(lines[1]) || !/^(W\/)?"[^"]*"$/.test(etag))
    throw new ResponseSpecInvalidError(`cached response ${name}: bad content type or ETag ${etag}`)
  const head = lines.join('\n')
  // Only a 2xx entry answers If-None-Match, and the read script compares the opaque tag (weak comparison).
  const headBytes = Buffer.from(head, 'latin1')
  const payload = Buffer.allocUnsafe(4 + headBytes.length + body.length)
  payload.writeUInt32BE(headBytes.length, 0)
  headBytes.copy(payload, 4)
  body.copy(payload, 4 + headBytes.length)
  return { payload, etag: status < 300 ? etag.replace(/^W\//, '') : undefined, head }
}

/**
 * True when an If-None-Match value names `etag` (weak comparison, as RFC 9110 asks for GET), or is `*`.
 * The read script applies the same rule (a plain substring match of the quoted tag).
 */
export function namesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false
  return ifNoneMatch.trim() === '*' || ifNoneMatch.includes(etag.startsWith('W/') ? etag.slice(2) : etag)
}

/** Sets the headers of an entry's head (`lines`: status, content type, ETag, then name and value pairs). */
function applyHead(reply: FastifyReply, lines: readonly string[], notModified: boolean): void {
  if (!notModified) reply.code(Number(lines[0])).header('content-type', lines[1])
  reply.header('etag', lines[2])
  for (let i = 3; i + 1 < lines.length; i += 2) reply.header(lines[i], lines[i + 1])
}

/** Sends a 304 from an entry's head (no body). */
export function sendNotModified(reply: FastifyReply, head: string, status: CacheStatus): FastifyReply {
  applyHead(reply, head.split('\n'), true)
  return reply.code(304).header('x-cache', status).send()
}

/** Sends an entry's bytes: its status, headers and body as stored; a 304 when If-None-Match names it. */
export function sendResponse(
  request: FastifyRequest,
  reply: FastifyReply,
  payload: Buffer,
  status: CacheStatus,
): FastifyReply {
  const headLength = payload.readUInt32BE(0)
  const lines = payload.toString('latin1', 4, 4 + headLength).split('\n')
  const inm = request.headers['if-none-match']
  const notModified = inm !== undefined && Number(lines[0]) < 300 && namesEtag(inm, lines[2])
  applyHead(reply, lines, notModified)
  reply.header('x-cache', status)
  return notModified ? reply.code(304).send() : reply.send(payload.subarray(4 + headLength))
}
