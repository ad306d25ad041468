/**
 * The dashboard's endpoints on the LB admin port:
 *
 * - `GET /dashboard/` the page (and its files below `/dashboard/`, uPlot under `/dashboard/vendor/`)
 * - `GET /dashboard/events` Server-Sent Events: `history` (the chart points) once, then a `snapshot` per tick
 * - `GET /dashboard/snapshot` one snapshot as JSON
 * - `GET /dashboard/targets` the registry's processes (LBs by their admin port) as Prometheus HTTP service discovery targets
 * - `POST /dashboard/jobs/retry` `{"type","id"}`: retries a failed job; operators only, and audited
 *
 * Every error answer is `{"error":{"code","message"}}` with its status (errors.ts).
 */
import { timingSafeEqual } from 'node:crypto'
import type http from 'node:http'
import type { Pool } from '../db/pool.js'
import { isFleetError } from '../errors.js'
import type { Logger } from '../log.js'
import { hostnameOf, isLoopback, isLoopbackHost } from '../net/loopback.js'
import type { Asset } from './assets.js'
import {
  DashboardBadRequestError,
  DashboardBusyError,
  DashboardForbiddenError,
  DashboardMethodNotAllowedError,
  DashboardUnavailableError,
  DashboardUnsupportedMediaTypeError,
} from './errors.js'
import type { DashboardOptions } from './options.js'
import type { Sampler } from './sampler.js'
import type { Snapshot } from './snapshot.js'

/** Bytes of an action's body, at most. */
const MAX_BODY = 4096
/** Longest an action may wait for the store Redis or PostgreSQL. */
const RETRY_DEADLINE_MS = 5_000
/** A client whose socket holds more than this unsent is skipped until it catches up. */
const MAX_BACKLOG = 1024 * 1024

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

export interface RouterDeps {
  options: DashboardOptions
  logger: Logger
  assets: Map<string, Asset>
  sampler: () => Sampler
  /** PostgreSQL for a retry (durable job records); undefined when DATABASE_URL is not set. */
  db: () => Promise<Pool | undefined>
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  })
  res.end(text)
}

function sendError(res: http.ServerResponse, err: unknown): void {
  const fleet = isFleetError(err)
  const headers: Record<string, string> = {}
  if (err instanceof DashboardMethodNotAllowedError) headers.allow = err.allowed
  if (fleet && err.statusCode === 503) headers['retry-after'] = '2'
  sendJson(
    res,
    fleet ? err.statusCode : 500,
    { error: { code: fleet ? err.code : 'FLEET_E_INTERNAL', message: (err as Error).message } },
    headers,
  )
}

export class DashboardRouter {
  readonly #deps: RouterDeps
  readonly #clients = new Set<http.ServerResponse>()
  /** Each snapshot is serialized once, however many pages are open. */
  readonly #frames = new WeakMap<Snapshot, string>()

  constructor(deps: RouterDeps) {
    this.#deps = deps
  }

  get clients(): number {
    return this.#clients.size
  }

  /** Handles `req` when its path is the dashboard's; false otherwise (the admin server answers). */
  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean {
    if (path === '/dashboard') {
      res.writeHead(308, { location: '/dashboard/' }).end()
      return true
    }
    if (!path.startsWith('/dashboard/')) return false
    const rest = path.slice('/dashboard/'.length)
    const only = (allowed: string) => {
      if (req.method === allowed || (allowed === 'GET' && req.method === 'HEAD')) return true
      sendError(res, new DashboardMethodNotAllowedError(req.method ?? '', allowed))
      return false
    }
    if (rest === 'events') {
      if (only('GET')) this.#events(req, res)
      return true
    }
    if (rest === 'snapshot') {
      if (only('GET'))
        this.#deps
          .sampler()
          .sample()
          .then(
            (s) => sendJson(res, 200, s),
            (err: unknown) => sendError(res, err),
          )
      return true
    }
    if (rest === 'targets') {
      if (only('GET')) this.#targets(res).catch((err: unknown) => sendError(res, err))
      return true
    }
    if (rest === 'jobs/retry') {
      if (only('POST')) void this.#retry(req, res)
      return true
    }
    const asset = this.#deps.assets.get(rest)
    if (!asset) return false
    if (only('GET')) this.#asset(req, res, asset)
    return true
  }

  #asset(req: http.IncomingMessage, res: http.ServerResponse, a: Asset): void {
    const headers: Record<string, string> = {
      'content-type': a.type,
      etag: a.etag,
      'cache-control': 'no-cache',
      vary: 'accept-encoding',
      ...SECURITY_HEADERS,
    }
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, headers).end()
      return
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))
    const body = gzip ? a.gzip : a.body
    res.writeHead(200, {
      ...headers,
      'content-length': String(body.length),
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  #events(req: http.IncomingMessage, res: http.ServerResponse): void {
    const max = this.#deps.options.maxClients
    if (this.#clients.size >= max) {
      sendError(res, new DashboardBusyError(max))
      return
    }
    const sampler = this.#deps.sampler()
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    })
    res.socket?.setNoDelay(true)
    res.write(`retry: 2000\n\nevent: history\ndata: ${JSON.stringify(sampler.history())}\n\n`)
    this.#clients.add(res)
    const send = (s: Snapshot) => {
      if (res.writableLength > MAX_BACKLOG) return // a stalled page skips ticks rather than buffer them
      let frame = this.#frames.get(s)
      if (!frame) {
        frame = `event: snapshot\ndata: ${JSON.stringify(s)}\n\n`
        this.#frames.set(s, frame)
      }
      res.write(frame)
    }
    if (sampler.latest) send(sampler.latest)
    const unsubscribe = sampler.subscribe(send)
    const done = () => {
      unsubscribe()
      this.#clients.delete(res)
    }
    req.once('close', done)
    res.once('close', done)
  }

  async #targets(res: http.ServerResponse): Promise<void> {
    const sampler = this.#deps.sampler()
    if (!sampler.latest) await sampler.sample()
    // The load balancers are scraped on their admin port (fleet_lb_*), so one LB's list covers them all.
    const lbs = await sampler.loadBalancers().catch(() => [])
    const targets = [
      ...sampler
        .registryEntries()
        .filter((e) => e.role !== 'lb')
        .map((e) => ({ e, url: e.url })),
      ...lbs.map((e) => ({ e, url: e.adminUrl })),
    ]
      .filter(({ url }) => url)
      .map(({ e, url }) => ({
        targets: [new URL(url as string).host],
        labels: { fleet_role: e.role, fleet_instance: e.id },
      }))
    sendJson(res, 200, targets)
  }

  /** Who asked, for the audit line; throws DashboardForbiddenError when they may not act. */
  #authorize(req: http.IncomingMessage): Record<string, unknown> {
    const token = this.#deps.options.token
    const address = req.socket.remoteAddress
    const operatorHeader = req.headers['x-fleet-operator']
    const operator =
      typeof operatorHeader === 'string' && /^[\x20-\x7e]{1,100}$/.test(operatorHeader)
        ? operatorHeader
        : undefined
    const who = {
      address,
      operator,
      auth: token ? 'token' : 'loopback',
      userAgent: String(req.headers['user-agent'] ?? '').slice(0, 200),
    }
    const origin = req.headers.origin
    if (
      origin !== undefined &&
      origin !== `http://${req.headers.host}` &&
      origin !== `https://${req.headers.host}`
    )
      throw Object.assign(
        new DashboardForbiddenError(`actions come from the dashboard's own page, not from ${origin}`),
        { who },
      )
    const site = req.headers['sec-fetch-site']
    if (site !== undefined && site !== 'same-origin' && site !== 'none')
      throw Object.assign(
        new DashboardForbiddenError(`actions come from the dashboard's own page (Sec-Fetch-Site: ${site})`),
        { who },
      )
    if (token) {
      const given = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1] ?? ''
      const a = Buffer.from(given)
      const b = Buffer.from(token)
      if (a.length !== b.length || !timingSafeEqual(a, b))
        throw Object.assign(
          new DashboardForbiddenError(
            given
              ? 'the dashboard token is wrong'
              : 'this action needs the dashboard token (Authorization: Bearer <FLEET_DASHBOARD_TOKEN>)',
          ),
          { who },
        )
      return who
    }
    const host = hostnameOf(req.headers.host)
    if (!isLoopback(address) || !isLoopbackHost(req.headers.host))
      throw Object.assign(
        new DashboardForbiddenError(
          `actions are taken only from this machine (loopback) unless FLEET_DASHBOARD_TOKEN is set; this request came from ${address} for host ${host || '(none)'}`,
        ),
        { who },
      )
    return who
  }

  async #retry(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const log = this.#deps.logger
    let who: Record<string, unknown> = { address: req.socket.remoteAddress }
    let job: { type?: string; id?: string } = {}
    try {
      who = this.#authorize(req)
      const type = String(req.headers['content-type'] ?? '')
      if (!/^application\/json\s*(;|$)/i.test(type))
        throw new DashboardUnsupportedMediaTypeError(type || undefined)
      const body = await readBody(req)
      job = parseRetry(body)
      const queues = this.#deps.sampler().jobs
      if (!queues)
        throw new DashboardUnavailableError(
          'no store Redis is configured (REDIS_URL), so there are no queues',
        )
      const db = await this.#deps.db()
      const done = await withDeadline(
        queues.retry(job.type as string, job.id as string, db),
        RETRY_DEADLINE_MS,
      ).catch((err: unknown) => {
        if (isFleetError(err)) throw err
        throw new DashboardUnavailableError(
          `the store Redis did not take the retry: ${(err as Error).message}`,
          { cause: err },
        )
      })
      log.info(
        {
          audit: true,
          action: 'job.retry',
          who,
          job,
          attemptsBefore: done.attempts,
          failedWith: done.code,
          outcome: 'retried',
          at: new Date().toISOString(),
        },
        `dashboard: ${who.operator ?? who.address} retried job ${job.id}`,
      )
      sendJson(res, 200, { retried: { type: job.type, id: job.id, attemptsBefore: done.attempts } })
    } catch (err) {
      const code = isFleetError(err) ? err.code : 'FLEET_E_INTERNAL'
      const w = (err as { who?: Record<string, unknown> }).who ?? who
      log.warn(
        {
          audit: true,
          action: 'job.retry',
          who: w,
          job,
          outcome: 'refused',
          code,
          reason: (err as Error).message,
          at: new Date().toISOString(),
        },
        `dashboard: refused to retry job ${job.id ?? '?'} for ${w.operator ?? w.address}`,
      )
      sendError(res, err)
    }
  }

  /** Ends every event stream (the LB is closing). */
  closeAll(): void {
    for (const res of this.#clients) res.end()
    this.#clients.clear()
  }
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new DashboardUnavailableError(`the store Redis or PostgreSQL did not answer within ${ms} ms`)),
      ms,
    )
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY) throw new DashboardBadRequestError(`the body is over ${MAX_BODY} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** `{"type","id"}` of a retry, checked. */
export function parseRetry(text: string): { type: string; id: string } {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new DashboardBadRequestError('the body is not JSON; send {"type":"<queue>","id":"<job id>"}')
  }
  const { type, id } = (body ?? {}) as { type?: unknown; id?: unknown }
  if (typeof type !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(type))
    throw new DashboardBadRequestError('"type" must be a job type name (1-100 of A-Z a-z 0-9 _ . : -)')
  if (typeof id !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(id))
    throw new DashboardBadRequestError('"id" must be a job id (1-200 visible ASCII characters)')
  return { type, id }
}
