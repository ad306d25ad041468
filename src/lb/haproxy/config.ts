/**
 * The HAProxy configuration of the `haproxy` engine, written from the same options as the Node engine: the
 * public frontend with the proxy duties (request id, X-Forwarded-* under the trusted-proxy rules, `Via`,
 * internal paths and CONNECT refused, the body limit, client timeouts), the `web` backend with active checks
 * on the health path, passive checks (observe layer7), slow start and safe retries, Fleet's coded JSON
 * errors in place of HAProxy's pages, and a loopback frontend for HAProxy's Prometheus exporter.
 *
 * Servers come and go through the runtime API (runtime.ts) with no reload; the config lists the members
 * known when it is written, so a reload starts with them.
 */
import { randomBytes } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { LoadBalancerOptions } from '../options.js'
import type { Upstream } from '../upstream.js'

/** A member of the `web` backend. */
export interface HaproxyServer {
  name: string
  host: string
  port: number
  /** HAProxy weight (1..256). */
  weight: number
}

export interface HaproxyPaths {
  /** The runtime API socket (level admin, with the listeners for seamless reloads). */
  adminSocket: string
  /** A folder for the static error answers (parser errors come before any rule runs). */
  errorDir: string
  /** Loopback port of the Prometheus exporter frontend. */
  exporterPort: number
  /** With TLS: the PEM file HAProxy reads (the certificate, its chain, then the key). */
  tlsPem?: string
}

/** The name HAProxy knows an upstream by: `u_<host>_<port>`, from its origin. */
export function serverName(origin: string): string {
  const u = new URL(origin)
  return `u_${u.hostname.replace(/[^A-Za-z0-9]/g, '_')}_${u.port || '80'}`
}

/** Fleet's weights (default 1, may be fractional) on HAProxy's integer scale: 10 per unit, 1..256. */
export function haproxyWeight(weight: number): number {
  return Math.max(1, Math.min(256, Math.round(weight * 10)))
}

/** An upstream as a member of the `web` backend (a `server` line, or an `add server` command). */
export function serverOf(u: Upstream): HaproxyServer {
  const url = new URL(u.origin)
  return {
    name: serverName(u.origin),
    host: url.hostname,
    port: Number(url.port || 80),
    weight: haproxyWeight(u.weight),
  }
}

/** The keywords of a `server` line (config) or an `add server` command (runtime API): checks, slow start. */
export function serverKeywords(options: LoadBalancerOptions, weight: number): string {
  const words = [
    'check',
    `inter ${Math.max(100, options.healthIntervalMs)}`,
    `fall ${options.healthFall}`,
    `rise ${options.healthRise}`,
    `weight ${weight}`,
    `maxconn ${Math.max(1, options.upstreamConnections)}`,
  ]
  if (options.slowStartMs > 0) words.push(`slowstart ${options.slowStartMs}`)
  // Passive checks: consecutive failed answers mark the server down until its checks bring it back.
  if (options.ejectFailures > 0) {
    words.push('observe layer7', `error-limit ${options.ejectFailures}`, 'on-error mark-down')
  }
  return words.join(' ')
}

/** One of Fleet's JSON error answers as an `http-error` / `http-request return` body (log-format). */
function jsonError(code: string, message: string): string {
  const body = JSON.stringify({ error: { code, message, requestId: '@RID@' } })
  // Quoted for HAProxy: single quotes, none inside; the request id is the transaction variable.
  return `'${body.replace(/'/g, '’').replace('"@RID@"', '"%[var(txn.rid)]"')}'`
}

const ERRORS: [number, string, string][] = [
  [400, 'FLEET_E_LB_BAD_REQUEST', 'malformed request'],
  [405, 'FLEET_E_LB_METHOD_NOT_ALLOWED', 'method not allowed by the load balancer'],
  [408, 'FLEET_E_LB_CLIENT_TIMEOUT', 'the request did not arrive in time'],
  [413, 'FLEET_E_LB_BODY_TOO_LARGE', 'the request body is larger than the load balancer accepts'],
  [502, 'FLEET_E_LB_BAD_GATEWAY', 'the web server failed to answer'],
  [503, 'FLEET_E_LB_NO_UPSTREAM', 'no web server can take the request now; retry shortly'],
  [504, 'FLEET_E_LB_UPSTREAM_TIMEOUT', 'the web server did not answer in time'],
]

/** HAProxy's regex of an internal path (decoded, lower case, slashes merged, dot segments resolved). */
function internalRegex(paths: readonly string[]): string | undefined {
  if (paths.length === 0) return undefined
  const alt = paths.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\\\$&')).join('|')
  return `^(${alt})(/.*)?$`
}

/**
 * Fragments one of which a raw path holds whenever its decoded, lower-cased, slash-merged form is internal:
 * the longest segment of each internal path (matched case-blind), and `%` (an encoded character). A request
 * whose path holds none skips the decoding and the regex: most requests. Undefined when some internal path
 * has no segment (`/`): every path is checked then.
 */
function internalFragments(paths: readonly string[]): string[] | undefined {
  const longest = paths.map((p) => p.split('/').reduce((a, b) => (b.length > a.length ? b : a), ''))
  if (longest.some((f) => f === '' || /\s/.test(f))) return undefined
  return [...new Set(longest.map((f) => f.toLowerCase())), '%']
}

/** Answers HAProxy sends before a request is parsed (no request id yet): static files. */
export const PARSER_ERRORS = [400, 408] as const

/** The files of PARSER_ERRORS: whole HTTP responses with Fleet's coded JSON body. */
export function parserErrorFiles(): Record<string, string> {
  const out: Record<string, string> = {}
  for (const status of PARSER_ERRORS) {
    const [, code, message] = ERRORS.find(([s]) => s === status) as [number, string, string]
    const body = JSON.stringify({ error: { code, message } })
    out[`${status}.http`] =
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`
  }
  return out
}

/** Fleet's coded JSON bodies in place of HAProxy's error pages (in `defaults`: parser errors use them too). */
function errorLines(retryAfterS: number): string[] {
  return ERRORS.map(([status, code, message]) => {
    const extra = status === 503 ? ` hdr Retry-After ${retryAfterS}` : ''
    return `  http-error status ${status} content-type application/json lf-string ${jsonError(code, message)} hdr Cache-Control no-store${extra}`
  })
}

/** The trusted proxies as HAProxy source ranges, from the option's BlockList rules. */
function trustedRanges(o: LoadBalancerOptions): string[] {
  const rules = o.trustedProxies?.rules ?? []
  return rules.flatMap((rule) => {
    const m = /^(?:Address|Subnet): IPv[46] (\S+)$/.exec(rule)
    return m ? [m[1]] : [] // a Range rule (not written by Fleet's settings) is left out
  })
}

/**
 * The 413 for an announced body over `limit`. HAProxy's integer header fetch (`req.hdr_val`) is 32 bits
 * and wraps: `Content-Length: 3000000000` reads as -1294967296 and would pass the 2gb default. So the
 * header is compared as a string: without leading zeros, longer than the limit's digits, or as long and
 * after it in order (equal-length digit strings order as numbers). HAProxy has already refused a
 * Content-Length that is not digits, or two that differ.
 */
function contentLengthLimit(limit: number, tooLarge: string): string[] {
  const digits = String(limit)
  return [
    '  http-request set-var(txn.cl) req.hdr(content-length),regsub(^0+,) if { req.hdr(content-length) -m found }',
    `  http-request set-var(txn.cl_limit) str(${digits}) if { var(txn.cl) -m found }`,
    `  acl cl_longer var(txn.cl),length gt ${digits.length}`,
    `  acl cl_as_long var(txn.cl),length eq ${digits.length}`,
    '  acl cl_after var(txn.cl),strcmp(txn.cl_limit) gt 0',
    `  http-request return ${tooLarge} if cl_longer || cl_as_long cl_after`,
  ]
}

function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}

/** With TLS and a redirect port: a plain-HTTP frontend that answers 308 to the same URL over HTTPS. */
function redirectFrontend(o: LoadBalancerOptions, paths: HaproxyPaths): string[] {
  if (!paths.tlsPem || o.redirectPort === undefined) return []
  const port = o.port === 443 ? '' : `:${o.port}`
  return [
    'frontend redirect',
    `  bind ${hostPort(o.host, o.redirectPort)}`,
    `  http-request redirect location https://%[req.hdr(host),field(1,:)]${port}%[capture.req.uri] code 308`,
    '',
  ]
}

/** The whole configuration text. */
export function haproxyConfig(
  options: LoadBalancerOptions,
  paths: HaproxyPaths,
  servers: readonly HaproxyServer[],
): string {
  // Header blocks up to maxHeaderSize must fit a buffer beside the space kept for rewrites.
  const bufsize = Math.max(16_384, options.maxHeaderSize + 2048)
  return [
    '# Written by Fleet (src/lb/haproxy/config.ts) for `fleet lb --engine haproxy`; do not edit: it is',
    '# rewritten on every start and reload, and servers change through the runtime API.',
    ...globalSection(options, paths, bufsize),
    ...defaultsSection(options, paths),
    ...publicFrontend(options, paths, bufsize),
    ...backendSection(options, servers),
    ...redirectFrontend(options, paths),
    ...exporterFrontend(paths),
  ].join('\n')
}

/** `global`: the runtime API socket, the bound on a soft stop, buffer sizes, HAProxy's own log. */
function globalSection(o: LoadBalancerOptions, paths: HaproxyPaths, bufsize: number): string[] {
  return [
    'global',
    `  stats socket ${paths.adminSocket} mode 600 level admin expose-fd listeners`,
    '  stats timeout 10s',
    // No global maxconn: HAProxy derives it from the open-files limit; the frontend's is FLEET_LB_MAX_CONNECTIONS.
    `  hard-stop-after ${Math.max(1000, o.shutdownTimeoutMs)}ms`,
    `  tune.bufsize ${bufsize}`,
    '  tune.maxrewrite 1024',
    // HAProxy's own alerts and notices; requests are not logged (a log line per request cost 6% of its
    // instructions per request): Fleet counts them from HAProxy's stats instead.
    '  log stdout format raw local0 notice',
    '',
  ]
}

/** `defaults`: timeouts, safe retries, connection reuse and Fleet's error answers. */
function defaultsSection(o: LoadBalancerOptions, paths: HaproxyPaths): string[] {
  const retryAfterS = Math.max(1, Math.ceil(o.healthIntervalMs / 1000))
  return [
    'defaults',
    '  mode http',
    `  timeout connect ${o.connectTimeoutMs}ms`,
    `  timeout http-request ${o.clientHeaderTimeoutMs}ms`,
    `  timeout client ${o.clientBodyTimeoutMs}ms`,
    `  timeout http-keep-alive ${o.clientKeepAliveMs}ms`,
    `  timeout server ${Math.max(o.headersTimeoutMs, o.bodyTimeoutMs)}ms`,
    `  timeout queue ${o.connectTimeoutMs}ms`,
    '  timeout tunnel 1h',
    '  timeout client-fin 5s',
    `  retries ${o.retries}`,
    '  option redispatch 1',
    // Safe retries only: a connection that failed (nothing sent), or, for a request that may be sent twice,
    // an upstream that closed or timed out before the first response byte.
    '  retry-on conn-failure empty-response response-timeout',
    '  http-reuse safe',
    ...errorLines(retryAfterS),
    ...PARSER_ERRORS.map((status) => `  errorfile ${status} ${paths.errorDir}/${status}.http`),
    '',
  ]
}

/** `frontend public`: the listener, then the proxy duties in the order HAProxy applies them. */
function publicFrontend(o: LoadBalancerOptions, paths: HaproxyPaths, bufsize: number): string[] {
  return [
    'frontend public',
    `  bind ${hostPort(o.host, o.port)}${paths.tlsPem ? ` ssl crt ${paths.tlsPem} alpn h2,http/1.1` : ''}`,
    `  maxconn ${o.maxConnections}`,
    ...requestIdRules(),
    // A CONNECT asks for a tunnel to any host, a TRACE echoes credentials: refused, as the Node engine does.
    `  http-request return status 405 content-type application/json lf-string ${jsonError('FLEET_E_LB_METHOD_NOT_ALLOWED', 'CONNECT and TRACE are not forwarded by the load balancer')} if { method CONNECT TRACE }`,
    `  http-request return status 431 content-type application/json lf-string ${jsonError('FLEET_E_LB_HEADERS_TOO_LARGE', `request headers exceed ${o.maxHeaderSize} bytes`)} hdr Connection close if { req.hdrs,length gt ${o.maxHeaderSize} }`,
    ...internalPathRules(o.internalPaths),
    ...bodyLimitRules(o, bufsize),
    ...forwardedHeaderRules(o, paths),
    ...hopRules(o),
    '  default_backend web',
    '',
  ]
}

/** The request id, on the request and its answer: the client's when 1-200 visible characters, else new. */
function requestIdRules(): string[] {
  return [
    '  acl rid_ok req.hdr(x-request-id) -m reg ^[!-~]{1,200}$',
    '  http-request set-var(txn.rid) req.hdr(x-request-id) if rid_ok',
    // Else a new one, as the Node engine makes them: a random prefix per config written (each reload has
    // its own) and HAProxy's request counter; uuid() cost 4% of the instructions per request.
    `  http-request set-var-fmt(txn.rid) ${randomBytes(4).toString('hex')}-%rt unless rid_ok`,
    '  http-request set-header X-Request-Id %[var(txn.rid)]',
    '  http-after-response set-header X-Request-Id %[var(txn.rid)]',
  ]
}

/** The 404 for an internal path (none when there are no internal paths). */
function internalPathRules(internalPaths: readonly string[]): string[] {
  const internal = internalRegex(internalPaths)
  if (!internal) return []
  const fragments = internalFragments(internalPaths)
  return [
    ...(fragments ? [`  acl maybe_internal path -m sub -i ${fragments.join(' ')}`] : []),
    `  http-request set-var(txn.path) path,url_dec,lower,regsub(//+,/,g)${fragments ? ' if maybe_internal' : ''}`,
    `  acl internal_path var(txn.path) -m reg ${internal}`,
    `  http-request return status 404 content-type application/json lf-string ${jsonError('FLEET_E_LB_NOT_FOUND', 'not found')} if internal_path`,
  ]
}

/** The 413s: an announced length over the limit, then the body itself as far as a buffer holds it. */
function bodyLimitRules(o: LoadBalancerOptions, bufsize: number): string[] {
  const tooLarge = `status 413 content-type application/json lf-string ${jsonError('FLEET_E_LB_BODY_TOO_LARGE', `request body exceeds ${o.maxBodySize} bytes`)} hdr Connection close`
  return [
    ...contentLengthLimit(o.maxBodySize, tooLarge),
    // Then the body (up to a buffer) before a server is picked: a slow client holds no server connection,
    // and a chunked body that fits the buffer is measured too (when the limit is below a buffer: a bigger
    // limit can never be passed by what waits there, and larger chunked bodies are HAProxy's to stream).
    `  http-request wait-for-body time ${o.clientRequestTimeoutMs}ms`,
    ...(o.maxBodySize < bufsize
      ? [`  http-request return ${tooLarge} if { req.body_size gt ${o.maxBodySize} }`]
      : []),
  ]
}

/**
 * X-Forwarded-*: kept (and appended to) from a trusted proxy only; from anyone else, what the LB saw.
 * With no trusted proxy the conditions are left out (each costs a lookup per request).
 */
function forwardedHeaderRules(o: LoadBalancerOptions, paths: HaproxyPaths): string[] {
  const trusted = trustedRanges(o)
  const untrusted = trusted.length > 0 ? ' unless from_trusted' : ''
  return [
    ...(trusted.length > 0 ? [`  acl from_trusted src ${trusted.join(' ')}`] : []),
    `  http-request del-header X-Forwarded-For${untrusted}`,
    `  http-request del-header Forwarded${untrusted}`,
    `  http-request set-header X-Forwarded-Proto ${paths.tlsPem ? 'https' : 'http'}${untrusted && `${untrusted} { req.hdr(x-forwarded-proto) -m reg ^https?$ }`}`,
    `  http-request set-header X-Forwarded-Host %[req.hdr(host)]${untrusted && `${untrusted} { req.hdr(x-forwarded-host) -m found }`}`,
    '  option forwardfor',
  ]
}

/** Hop-by-hop headers dropped both ways, and this LB's `Via` added both ways. */
function hopRules(o: LoadBalancerOptions): string[] {
  const via = o.instanceId.replace(/[^A-Za-z0-9._-]/g, '_')
  return [
    // Hop-by-hop headers stay on their hop (HAProxy 2.6 passes them; the ones named in Connection it cannot
    // know in advance: those pass, docs/load-balancer.md).
    '  http-request del-header ^(keep-alive|te|proxy-authorization|proxy-connection)$ -m reg',
    '  http-response del-header ^(keep-alive|proxy-authenticate)$ -m reg',
    `  http-request add-header Via "1.1 ${via}"`,
    `  http-response add-header Via "1.1 ${via}"`,
  ]
}

/** `backend web`: the strategy, active checks, which requests may be retried, and the known servers. */
function backendSection(o: LoadBalancerOptions, servers: readonly HaproxyServer[]): string[] {
  return [
    'backend web',
    `  balance ${o.strategy === 'p2c' ? 'leastconn' : 'roundrobin'}`,
    `  option httpchk GET ${o.healthPath}`,
    '  http-check expect status 200',
    `  timeout check ${o.healthTimeoutMs}ms`,
    // A POST or PATCH is sent again only when the client gave an Idempotency-Key (connect failures excepted).
    '  acl idempotent method GET HEAD OPTIONS TRACE PUT DELETE',
    '  http-request disable-l7-retry unless idempotent || { req.hdr(idempotency-key) -m found }',
    ...servers.map((s) => `  server ${s.name} ${s.host}:${s.port} ${serverKeywords(o, s.weight)}`),
    '',
  ]
}

/** A loopback frontend serving HAProxy's Prometheus exporter at /metrics (404 elsewhere). */
function exporterFrontend(paths: HaproxyPaths): string[] {
  return [
    'frontend exporter',
    `  bind 127.0.0.1:${paths.exporterPort}`,
    '  http-request use-service prometheus-exporter if { path /metrics }',
    `  http-request return status 404 content-type text/plain string "${STATUS_CODES[404]}"`,
    '',
  ]
}
