/**
 * Sessions in the store Redis. A session is one Redis HASH, `<prefix>sess:<id>`, so that two concurrent
 * requests changing different fields (two cart lines, `cart:<productId>`) both stick: every write is an
 * HSET/HDEL of its own fields, never a read-modify-write of a whole blob. The id is 256 random bits in the
 * cookie FLEET_SESSION_COOKIE (HttpOnly, SameSite=Lax, Path=/, Secure when the request came over https);
 * expiry rolls: each request that uses the session runs PEXPIRE and sends the cookie again with a matching
 * Max-Age. A request that never touches `request.session` costs no Redis call. Writes (create, set, delete,
 * destroy) are acknowledged writes (src/redis/acknowledged.ts): with FLEET_STORE_WAIT_REPLICAS they are on
 * that many replicas before the request goes on, or it ends in a 503.
 */
import { randomBytes } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import { parse as parseCookie, type SerializeOptions, serialize as serializeCookie } from 'cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/index.js'
import { FleetError } from '../errors.js'
import { acknowledged } from '../redis/acknowledged.js'
import type { Redis } from '../redis/connect.js'
import { UnavailableError } from './errors.js'
import { scripts } from './scripts.js'

/** The request needs a logged-in user and has none (no session, expired, or logged out). */
export class AuthenticationRequiredError extends FleetError {
  static override code = 'FLEET_E_HTTP_UNAUTHENTICATED'
  static override statusCode = 401
  constructor() {
    super('this needs a logged-in user: log in first (the request has no session, or it expired)')
  }
}

/** The logged-in user may not do this (e.g. a customer calling an admin route). */
export class ForbiddenError extends FleetError {
  static override code = 'FLEET_E_HTTP_FORBIDDEN'
  static override statusCode = 403
  constructor(what = 'this action') {
    super(`${what} needs the admin role`)
  }
}

/** The signed-in user of a session (`requireUser(request)` answers it, or 401). */
export interface SessionUser {
  id: number
  email: string
  role: 'customer' | 'admin'
}

/** A session id as issued: 32 random bytes, base64url (43 characters). Anything else is ignored unread. */
const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/
/** Field that every session has, so a session with no other data still exists as a key. */
const CREATED = 'created'
const USER = 'user'

/** Runs a store operation; a Redis failure becomes a 503 the client may retry, never a 500. */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof FleetError) throw err // e.g. FLEET_E_REDIS_NOT_REPLICATED: a 503 with its own code
    throw new UnavailableError('the session store is unavailable; retry shortly', { cause: err })
  }
}

function newId(): string {
  return randomBytes(32).toString('base64url')
}

/** Session storage in Redis, shared by every request of a process (it holds no per-user state). */
export class SessionStore {
  readonly redis: Redis
  readonly prefix: string
  readonly ttlMs: number

  constructor(redis: Redis, options: { prefix: string; ttlMs: number }) {
    this.redis = redis
    this.prefix = options.prefix
    this.ttlMs = options.ttlMs
  }

  key(id: string): string {
    return `${this.prefix}sess:${id}`
  }

  /** The session's fields (renewing its TTL), or undefined when it does not exist. */
  async load(id: string): Promise<Record<string, string> | undefined> {
    return guard(async () => {
      const res = await this.redis.multi().hgetall(this.key(id)).pexpire(this.key(id), this.ttlMs).exec()
      const [err, data] = res?.[0] ?? [new Error('session load aborted'), undefined]
      if (err) throw err
      const fields = data as Record<string, string>
      return Object.keys(fields).length === 0 ? undefined : fields
    })
  }

  /** Sets fields of an existing session (renewing its TTL); false when the session is gone. */
  async update(id: string, fields: Record<string, string>): Promise<boolean> {
    return guard(async () => {
      const args = Object.entries(fields).flat()
      if (args.length === 0) return (await this.redis.pexpire(this.key(id), this.ttlMs)) === 1
      const set = await acknowledged(this.redis, (r) =>
        scripts.sessionSet.run(r, [this.key(id)], [this.ttlMs, ...args]),
      )
      return set === 1
    })
  }

  /** Creates a session holding `fields`; returns its new id. */
  async create(fields: Record<string, string>): Promise<string> {
    return guard(async () => {
      const id = newId()
      const key = this.key(id)
      await acknowledged(this.redis, (r) =>
        r
          .multi()
          .hset(key, { ...fields, [CREATED]: String(Date.now()) })
          .pexpire(key, this.ttlMs)
          .exec(),
      )
      return id
    })
  }

  /** Removes fields (the session itself stays, with its TTL renewed). */
  async remove(id: string, fields: readonly string[]): Promise<void> {
    return guard(async () => {
      await acknowledged(this.redis, (r) =>
        r
          .multi()
          .hdel(this.key(id), ...fields)
          .pexpire(this.key(id), this.ttlMs)
          .exec(),
      )
    })
  }

  async destroy(id: string): Promise<void> {
    return guard(async () => {
      await acknowledged(this.redis, (r) => r.del(this.key(id)))
    })
  }
}

/**
 * One request's view of its session. Nothing is read from Redis until a method needs it; writes go
 * straight to Redis field by field. Every method that finds or creates a session (re)sends the cookie.
 */
export class Session {
  readonly #store: SessionStore
  readonly #request: FastifyRequest
  readonly #reply: FastifyReply
  readonly #options: { cookie: string; trustProxy: boolean }
  /** Read from the Cookie header when first needed: a request that never uses its session parses nothing. */
  #id: string | undefined
  #idRead = false
  #data: Record<string, string> | undefined
  #loaded = false
  #loading: Promise<void> | undefined

  constructor(
    store: SessionStore,
    request: FastifyRequest,
    reply: FastifyReply,
    options: { cookie: string; trustProxy: boolean },
  ) {
    this.#store = store
    this.#request = request
    this.#reply = reply
    this.#options = options
  }

  get #current(): string | undefined {
    if (!this.#idRead) {
      this.#idRead = true
      const header = this.#request.headers.cookie
      const raw = header ? parseCookie(header)[this.#options.cookie] : undefined
      this.#id = raw && ID_PATTERN.test(raw) ? raw : undefined
    }
    return this.#id
  }

  set #current(id: string | undefined) {
    this.#idRead = true
    this.#id = id
  }

  /** The session id, when the request carried a well-formed one or a method created one. */
  get id(): string | undefined {
    return this.#current
  }

  /**
   * Every field of the session (empty when there is none). Reads Redis once per request, however many
   * reads run at once (they share the one load).
   */
  async all(): Promise<Readonly<Record<string, string>>> {
    if (!this.#loaded) {
      this.#loading ??= this.#load()
      await this.#loading
    }
    return this.#data ?? {}
  }

  async #load(): Promise<void> {
    const data = this.#current ? await this.#store.load(this.#current) : undefined
    if (this.#loaded) return // a write (set, regenerate, destroy) decided the data meanwhile
    this.#loaded = true
    this.#data = data
    if (this.#data) this.#sendCookie()
    else if (this.#current) {
      // Expired or destroyed elsewhere: tell the browser to stop sending it.
      this.#current = undefined
      this.#clearCookie()
    }
  }

  async get(field: string): Promise<string | undefined> {
    return (await this.all())[field]
  }

  /** The logged-in user, if any. */
  async user(): Promise<SessionUser | undefined> {
    const raw = await this.get(USER)
    if (!raw) return undefined
    try {
      return JSON.parse(raw) as SessionUser
    } catch {
      return undefined // not written by this code: treat as logged out
    }
  }

  /** Sets fields, creating the session when there is none (or it expired meanwhile). */
  async set(fields: Record<string, string>): Promise<void> {
    if (CREATED in fields) throw new Error(`session field ${CREATED} is reserved`)
    if (this.#current && (await this.#store.update(this.#current, fields))) {
      if (this.#data) Object.assign(this.#data, fields)
    } else {
      this.#current = await this.#store.create(fields)
      this.#data = { ...fields, [CREATED]: String(Date.now()) }
      this.#loaded = true
    }
    this.#sendCookie()
  }

  /** Removes fields; nothing happens when there is no session. */
  async delete(...fields: string[]): Promise<void> {
    const removable = fields.filter((f) => f !== CREATED)
    if (!this.#current || removable.length === 0) return
    await this.#store.remove(this.#current, removable)
    if (this.#data) for (const f of removable) delete this.#data[f]
    this.#sendCookie()
  }

  /**
   * Moves the session to a new id (against session fixation, on login): the old id is destroyed, its
   * fields (the cart) are carried over, then `fields` are set on the new one.
   */
  async regenerate(fields: Record<string, string> = {}): Promise<void> {
    const previous = this.#current ? ((await this.#store.load(this.#current)) ?? {}) : {}
    delete previous[CREATED]
    const data = { ...previous, ...fields }
    const oldId = this.#current
    this.#current = await this.#store.create(data)
    if (oldId) await this.#store.destroy(oldId)
    this.#data = { ...data, [CREATED]: String(Date.now()) }
    this.#loaded = true
    this.#sendCookie()
  }

  /** Logs out: deletes the session and tells the browser to drop the cookie. */
  async destroy(): Promise<void> {
    if (this.#current) await this.#store.destroy(this.#current)
    this.#current = undefined
    this.#data = undefined
    this.#loaded = true
    this.#clearCookie()
  }

  /** Logs the user in on a fresh session id. */
  async login(user: SessionUser): Promise<void> {
    await this.regenerate({ [USER]: JSON.stringify(user) })
  }

  #cookieOptions(): SerializeOptions {
    const secure = isHttps(this.#request, this.#options.trustProxy)
    return { path: '/', httpOnly: true, sameSite: 'lax', secure }
  }

  #sendCookie(): void {
    const id = this.#current
    if (!id) return
    this.#setCookie(id, {
      ...this.#cookieOptions(),
      maxAge: Math.max(1, Math.floor(this.#store.ttlMs / 1000)),
    })
  }

  #clearCookie(): void {
    this.#setCookie('', { ...this.#cookieOptions(), expires: new Date(0), maxAge: 0 })
  }

  /** Sets the session cookie on the reply, replacing an earlier one of this request and keeping any other. */
  #setCookie(value: string, options: SerializeOptions): void {
    const name = this.#options.cookie
    const had = this.#reply.getHeader('set-cookie')
    const others = (had === undefined ? [] : Array.isArray(had) ? had : [String(had)]).filter(
      (c) => !c.startsWith(`${name}=`),
    )
    const mine = serializeCookie(name, value, options)
    // Fastify appends to a set-cookie header already there: replace the whole list instead.
    this.#reply.removeHeader('set-cookie')
    this.#reply.header('set-cookie', others.length > 0 ? [...others, mine] : mine)
  }
}

/** True when the client reached us over TLS, directly or (behind a trusted proxy) per X-Forwarded-Proto. */
export function isHttps(request: FastifyRequest, trustProxy: boolean): boolean {
  if ((request.raw.socket as TLSSocket | undefined)?.encrypted) return true
  if (!trustProxy) return false
  const header = request.headers['x-forwarded-proto']
  const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0]?.trim().toLowerCase()
  return first === 'https'
}

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's session; lazily loaded (see src/web/session.ts). */
    session: Session
  }
}

export interface SessionPluginOptions {
  redis: Redis
  config: Pick<Config, 'redisPrefix' | 'sessionCookie' | 'sessionTtl' | 'trustProxy'>
}

/**
 * Decorates every request with `request.session`. Registered without encapsulation (skip-override), so
 * every plugin registered after it in the same context sees the decorator. Reads and writes its cookie itself
 * (the `cookie` package), only when the session is used.
 * @example await app.register(sessionPlugin, { redis: deps.redis, config: deps.config })
 */
export async function sessionPlugin(app: FastifyInstance, options: SessionPluginOptions): Promise<void> {
  if (app.hasRequestDecorator('session')) return
  const { config } = options
  const store = new SessionStore(options.redis, { prefix: config.redisPrefix, ttlMs: config.sessionTtl })
  const cookieOptions = { cookie: config.sessionCookie, trustProxy: config.trustProxy }
  app.decorateRequest('session', null as unknown as Session)
  // Synchronous: a Session is a handle that reads Redis only when used, so a request that never touches it
  // (a cached page) pays one small object.
  app.addHook('onRequest', (request, reply, done) => {
    request.session = new Session(store, request, reply, cookieOptions)
    done()
  })
}
Object.assign(sessionPlugin, { [Symbol.for('skip-override')]: true })

/** The logged-in user of the request; throws 401 (FLEET_E_HTTP_UNAUTHENTICATED) when there is none. */
export async function requireUser(request: FastifyRequest): Promise<SessionUser> {
  if (!request.session) throw new Error('requireUser: register sessionPlugin (src/web/session.ts) first')
  const user = await request.session.user()
  if (!user) throw new AuthenticationRequiredError()
  return user
}

/** The logged-in admin; 401 when nobody is logged in, 403 (FLEET_E_HTTP_FORBIDDEN) for a customer. */
export async function requireAdmin(request: FastifyRequest): Promise<SessionUser> {
  const user = await requireUser(request)
  if (user.role !== 'admin') throw new ForbiddenError()
  return user
}
