/**
 * The web server runtime: a Fastify instance with request ids, X-Served-By, security headers (headers.ts), health and
 * readiness, metrics, OpenAPI, sessions (`request.session`, with its cookie), and one error format for every failure.
 * Applications plug in as `routes`.
 */
import { randomUUID } from 'node:crypto'
import swagger from '@fastify/swagger'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify'
import { errorBody, FleetError, isFleetError } from '../errors.js'
import type { AppDeps, ProcessDeps } from '../process/deps.js'
import { accessLogFilter } from './access-log.js'
import { installBodyParsing, lingerOnUnreadBody } from './body.js'
import {
  BadRequestError,
  BodyTooLargeError,
  InvalidValueError,
  RouteNotFoundError,
  UnsupportedMediaTypeError,
  ValidationError,
} from './errors.js'
import { constantHeaders, hstsValue } from './headers.js'
import { type Readiness, registerHealth } from './health.js'
import { registerHttpMetrics } from './metrics.js'
import { refusedValue } from './refused-value.js'
import { lazyRequestLogger } from './request-logger.js'
import { isHttps, sessionPlugin } from './session.js'
import { installValidation, STORABLE_TEXT } from './validation.js'

/** The Fastify instance a route plugin registers its routes on. */
export type App = FastifyInstance
/**
 * An application plugin: registers its routes on the app with the shared dependencies. For typed schemas
 * it calls `app.withTypeProvider<TypeBoxTypeProvider>()` itself.
 */
export type Routes = (app: FastifyInstance, deps: AppDeps) => Promise<void>

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export interface BuildOptions {
  /** Application route plugins, registered in order. */
  routes?: readonly Routes[]
  /** Whether the process is draining (readiness turns false). */
  readiness?: Readiness
  /** Title and version of the OpenAPI document (`/openapi.json`). */
  openapi?: { title: string; version: string }
}

/**
 * Builds (but does not start) the web server of one instance.
 * @example const app = await buildServer(deps, { routes: [helloRoutes] }); await app.listen({ port: 0 })
 */
export async function buildServer(deps: ProcessDeps, options: BuildOptions = {}): Promise<FastifyInstance> {
  const { config, logger, instanceId } = deps
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    // A request id from the client (or the LB) is kept when it is well formed, else a new one is made.
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    // One access log line per request is written by the onResponse hook below, with the fields we want.
    logController: new LogController({ requestIdLogLabel: 'reqId', disableRequestLogging: true }),
    childLoggerFactory: lazyRequestLogger,
    forceCloseConnections: 'idle',
  })

  installValidation(app)
  installBodyParsing(app)
  // Everything a request needs before its route, in one synchronous hook: the constant headers (security,
  // X-Served-By), its id, HSTS over https. A cached hit runs nothing else of Fleet's before the handler.
  const headers = constantHeaders(instanceId)
  const hsts = hstsValue(config)
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(headers)
    reply.header('x-request-id', request.id)
    if (hsts && isHttps(request, config.trustProxy)) reply.header('strict-transport-security', hsts)
    done()
  })
  const access = accessLogFilter(config.accessLog)
  if (access) {
    app.addHook('onResponse', (request, reply, done) => {
      const ms = reply.elapsedTime
      // Through the server's logger with the id as a field (the line a request child would write), so a
      // request that logs nothing else never builds its child logger.
      if (access(reply.statusCode, ms))
        app.log.info(
          {
            reqId: request.id,
            method: request.method,
            url: request.url,
            status: reply.statusCode,
            ms: Math.round(ms),
          },
          'request',
        )
      done()
    })
  }
  await app.register(sessionPlugin, { redis: deps.redis, config })
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Fleet app', version: '1.0.0', ...options.openapi },
    },
  })

  app.setErrorHandler((err: FastifyError | FleetError, request, reply) => {
    const fleet = toFleetError(err, request.headers['content-type'])
    // Answered before the body was read whole (413, 415): the client may finish sending, then read this.
    const code = (err as FastifyError).code
    lingerOnUnreadBody(request, reply, typeof code === 'string' && code.startsWith('FST_ERR_CTP_'))
    if (fleet.statusCode >= 500) request.log.error({ err }, 'request failed')
    else if (fleet.code === InvalidValueError.code)
      request.log.warn({ err }, 'the database refused a request value: a route schema should bound it')
    const retryAfter = (fleet as { retryAfter?: unknown }).retryAfter
    if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter))
    else if (fleet.statusCode === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', '1')
    reply
      .status(fleet.statusCode)
      .send(
        errorBody(fleet, fleet.statusCode >= 500 && !isFleetError(err) ? 'internal error' : fleet.message),
      )
  })
  app.setNotFoundHandler((request) => {
    throw new RouteNotFoundError(`no route for ${request.method} ${request.url.split('?')[0]}`)
  })

  registerHealth(app, deps, options.readiness ?? { draining: false })
  registerHttpMetrics(app, deps.metrics)
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  for (const routes of options.routes ?? []) await routes(app, deps)
  return app
}

/**
 * Maps Fastify's own errors (validation, body limits, media types) and PostgreSQL's refusals of a request's
 * values to Fleet's codes; `contentType` (the request's) names what a 415 refused.
 */
export function toFleetError(err: FastifyError | FleetError, contentType?: string): FleetError {
  if (isFleetError(err)) return err
  const e = err as FastifyError
  if (e.validation) {
    const first = e.validation[0]
    const where = e.validationContext ?? 'body'
    const params = first?.params as
      | { missingProperty?: string; additionalProperty?: string; pattern?: string }
      | undefined
    const named = params?.missingProperty ?? params?.additionalProperty
    const path = [first?.instancePath?.replace(/^\//, '').replace(/\//g, '.'), named]
      .filter(Boolean)
      .join('.')
    const field = path || where
    const problem =
      first?.keyword === 'pattern' && params?.pattern === STORABLE_TEXT
        ? 'must not contain NUL characters (U+0000); remove them'
        : (first?.message ?? 'is invalid')
    return new ValidationError(`${where}${path ? `.${path}` : ''} ${problem}`, {
      details: { field, in: where },
      cause: err,
    })
  }
  const refused = refusedValue(err)
  if (refused) return refused
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BodyTooLargeError('request body is too large', { cause: err })
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError(
        `${contentType ? `Content-Type ${JSON.stringify(contentType.slice(0, 100))} is not accepted` : 'a body needs a Content-Type'}; send application/json`,
        { cause: err },
      )
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 413) return new BodyTooLargeError(e.message, { cause: err })
    if (e.statusCode === 415) return new UnsupportedMediaTypeError(e.message, { cause: err })
    return new BadRequestError(e.message, { cause: err })
  }
  return new FleetError('internal error', { cause: err })
}
