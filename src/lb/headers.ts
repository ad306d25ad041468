/**
 * Header duties of a proxy (RFC 9110 7.6, RFC 9112 9.6): hop-by-hop headers and the ones the `Connection`
 * header names stay on their hop; `Via` is appended in both directions; `X-Request-Id` is passed on or
 * created. The forwarded headers are believed only from a trusted proxy (FLEET_LB_TRUSTED_PROXIES): from
 * one, `X-Forwarded-For` is appended to and its `X-Forwarded-Proto` / `X-Forwarded-Host` / `Forwarded`
 * kept; from anyone else they are replaced by what the LB saw (the client address, `http`, the Host), so
 * a client can neither pose as another address nor claim https.
 */
import { randomBytes } from 'node:crypto'
import { MalformedRequestError } from './errors.js'

/** Headers that describe one connection, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** Headers the LB sets itself on the way up (the client's copies are replaced or extended). */
const REPLACED_UP = new Set([
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-request-id',
  'via',
  'x-forwarded-for',
  'forwarded',
  'expect',
])

/** Never removed because `Connection` names them: they frame or route the message. */
const PROTECTED = new Set(['host', 'content-length'])

/** Scratch list of lower-case request header names (see upstreamRequestHead). */
const LOWER_NAMES: string[] = []

const REQUEST_ID = /^[\x21-\x7e]{1,200}$/
/** A Host value (RFC 9110 7.2, RFC 3986 3.2.2): a reg-name or IPv4 address, or an IP literal in brackets; a port. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::\d*)?$/
const ID_PREFIX = randomBytes(4).toString('hex')
let idCounter = 0

/** A new request id, unique per process run (a random prefix and a counter). */
export function newRequestId(): string {
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER
  return `${ID_PREFIX}-${idCounter.toString(36)}`
}

/** Header names listed in `Connection` values (lower case), without the protected ones. */
function connectionTokens(values: string[]): Set<string> | undefined {
  let out: Set<string> | undefined
  for (const v of values) {
    // The common values name no header: skip the split (most upstream responses carry one of them).
    if (v.length <= 10) {
      const l = v.toLowerCase()
      if (l === 'keep-alive' || l === 'close') continue
    }
    for (const t of v.split(',')) {
      const name = t.trim().toLowerCase()
      if (name && !PROTECTED.has(name) && name !== 'close' && name !== 'keep-alive') {
        out ??= new Set()
        out.add(name)
      }
    }
  }
  return out
}

export interface UpstreamRequestHead {
  /** Flat [name, value, ...] list for undici. */
  headers: string[]
  requestId: string
  host: string
  idempotencyKey: boolean
  expectContinue: boolean
  /** The Content-Length value, if any (read here so `req.headers` is never built). */
  contentLength: string | undefined
  /** True when the request has a Transfer-Encoding header. */
  chunked: boolean
  /** The Upgrade header value, if any. */
  upgrade: string | undefined
}

/**
 * The headers to send upstream for a client request, from its raw header list.
 * Throws MalformedRequestError for two Host headers or two different Content-Length values.
 */
export function upstreamRequestHead(
  raw: string[],
  clientAddress: string,
  httpVersion: string,
  via: string,
  trusted = false,
  /** How the client reached the LB: `https` on its TLS port. */
  scheme: 'http' | 'https' = 'http',
): UpstreamRequestHead {
  // Lower-case names, computed once for both passes (reused array: this function never re-enters).
  const lower = LOWER_NAMES
  lower.length = 0
  const seen = readRequestHeaders(raw, lower)
  const headers = passedOn(raw, lower, seen.connection)
  const requestId = seen.requestId ?? newRequestId()
  let host = seen.host
  if (host === undefined && seen.authority !== undefined) {
    host = seen.authority
    headers.push('host', host)
  }
  const hostValue = host ?? ''
  // RFC 9112 3.2: a Host that is no host[:port] is answered 400 (undici would fail on `[` without `]`: a 502).
  if (!HOST.test(hostValue))
    throw new MalformedRequestError('the Host header is not host[:port] (a name, an IPv4 address or [IPv6])')
  const { xff, proto, forwardedHost, forwarded, viaIn } = seen
  headers.push(
    'via',
    viaIn === undefined ? `${httpVersion} ${via}` : `${viaIn}, ${httpVersion} ${via}`,
    'x-forwarded-for',
    trusted && xff !== undefined ? `${xff}, ${clientAddress}` : clientAddress,
    'x-forwarded-proto',
    trusted && (proto === 'https' || proto === 'http') ? proto : scheme,
    'x-forwarded-host',
    trusted && forwardedHost ? forwardedHost : hostValue,
    'x-request-id',
    requestId,
  )
  if (trusted && forwarded !== undefined) headers.push('forwarded', forwarded)
  return {
    headers,
    requestId,
    host: hostValue,
    idempotencyKey: seen.idempotencyKey,
    expectContinue: seen.expectContinue,
    contentLength: seen.contentLength,
    chunked: seen.chunked,
    upgrade: seen.upgrade,
  }
}

/** What the first pass over a request's headers found (several values of a list header joined by `, `). */
interface SeenRequestHeaders {
  host: string | undefined
  /** HTTP/2's `:authority`, the Host when there is none. */
  authority: string | undefined
  contentLength: string | undefined
  connection: string[] | undefined
  xff: string | undefined
  proto: string | undefined
  forwardedHost: string | undefined
  forwarded: string | undefined
  viaIn: string | undefined
  /** The client's X-Request-Id, when it is one we pass on (printable ASCII, 1 to 200 characters). */
  requestId: string | undefined
  idempotencyKey: boolean
  expectContinue: boolean
  chunked: boolean
  upgrade: string | undefined
}

/**
 * One pass over the raw headers: collects what the LB acts on and pushes each lower-case name to `lower`.
 * Throws MalformedRequestError for two Host headers or two different Content-Length values.
 */
function readRequestHeaders(raw: string[], lower: string[]): SeenRequestHeaders {
  const seen: SeenRequestHeaders = {
    host: undefined,
    authority: undefined,
    contentLength: undefined,
    connection: undefined,
    xff: undefined,
    proto: undefined,
    forwardedHost: undefined,
    forwarded: undefined,
    viaIn: undefined,
    requestId: undefined,
    idempotencyKey: false,
    expectContinue: false,
    chunked: false,
    upgrade: undefined,
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    const value = raw[i + 1]
    lower.push(name)
    switch (name) {
      // HTTP/2 pseudo-headers: the authority is the Host; the others are the request line, sent as such.
      case ':authority':
        seen.authority ??= value
        break
      case 'transfer-encoding':
        seen.chunked = true
        break
      case 'upgrade':
        seen.upgrade = value
        break
      case 'host':
        if (seen.host !== undefined)
          throw new MalformedRequestError('the request has more than one Host header')
        seen.host = value
        break
      case 'content-length':
        if (seen.contentLength !== undefined && seen.contentLength !== value)
          throw new MalformedRequestError('the request has conflicting Content-Length headers')
        seen.contentLength = value
        break
      case 'connection':
        if (seen.connection) seen.connection.push(value)
        else seen.connection = [value]
        break
      case 'x-forwarded-for':
        seen.xff = seen.xff === undefined ? value : `${seen.xff}, ${value}`
        break
      case 'x-forwarded-proto':
        seen.proto ??= value.trim().toLowerCase()
        break
      case 'x-forwarded-host':
        seen.forwardedHost ??= value
        break
      case 'forwarded':
        seen.forwarded = seen.forwarded === undefined ? value : `${seen.forwarded}, ${value}`
        break
      case 'via':
        seen.viaIn = seen.viaIn === undefined ? value : `${seen.viaIn}, ${value}`
        break
      case 'x-request-id':
        if (seen.requestId === undefined && REQUEST_ID.test(value)) seen.requestId = value
        break
      case 'idempotency-key':
        seen.idempotencyKey = true
        break
      case 'expect':
        if (value.trim().toLowerCase() === '100-continue') seen.expectContinue = true
        break
    }
  }
  return seen
}

/**
 * The client's headers that go on unchanged, as a flat list: not hop-by-hop, not one the LB sets itself,
 * not named by `Connection`, no HTTP/2 pseudo-header, one Content-Length.
 */
function passedOn(raw: string[], lower: string[], connection: string[] | undefined): string[] {
  const drop = connection ? connectionTokens(connection) : undefined
  const headers: string[] = []
  let lengthSent = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = lower[i >> 1]
    if (HOP_BY_HOP.has(name) || REPLACED_UP.has(name) || drop?.has(name) || name.charCodeAt(0) === 58)
      continue
    if (name === 'content-length') {
      // Duplicates with the same value were checked above; send one.
      if (lengthSent) continue
      lengthSent = true
    }
    headers.push(raw[i], raw[i + 1])
  }
  return headers
}

/**
 * The headers to send the client for an upstream response (raw Buffers from undici), as a flat list for
 * `res.writeHead`: hop-by-hop headers dropped, `Via` appended, `X-Request-Id` added when missing.
 */
export function clientResponseHeaders(raw: Buffer[], via: string, requestId: string): string[] {
  const out: string[] = []
  let connection: string[] | undefined
  let viaIn: string | undefined
  let hasRequestId = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1')
    const lower = name.toLowerCase()
    const value = raw[i + 1].toString('latin1')
    if (lower === 'connection') {
      if (connection) connection.push(value)
      else connection = [value]
      continue
    }
    if (lower === 'via') {
      viaIn = viaIn === undefined ? value : `${viaIn}, ${value}`
      continue
    }
    if (HOP_BY_HOP.has(lower)) continue
    if (lower === 'x-request-id') hasRequestId = true
    out.push(name, value)
  }
  if (connection) {
    const drop = connectionTokens(connection)
    if (drop) {
      for (let i = out.length - 2; i >= 0; i -= 2) if (drop.has(out[i].toLowerCase())) out.splice(i, 2)
    }
  }
  out.push('via', viaIn === undefined ? `1.1 ${via}` : `${viaIn}, 1.1 ${via}`)
  if (!hasRequestId) out.push('x-request-id', requestId)
  return out
}
