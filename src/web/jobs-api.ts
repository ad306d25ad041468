/**
 * The jobs HTTP API: `GET /api/jobs/:id` (state, progress, attempts, result or coded error),
 * `GET /api/jobs/:id/events` (Server-Sent Events, resumable with Last-Event-ID, from any web server) and
 * `DELETE /api/jobs/:id` (cancel). Only the job's owner sees it; anyone else gets 404. Routes that start
 * jobs answer with `accepted()`: 202, `Location: /api/jobs/:id`, `{ id, state }`.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { loadJobModules } from '../jobs/catalog.js'
import { JobClient, type JobView } from '../jobs/client.js'
import { IdempotencyKeyInvalidError } from '../jobs/errors.js'
import { JobEventHub } from '../jobs/events.js'
import { connectQueueRedis } from '../jobs/queues.js'
import { streamJobEvents } from '../jobs/sse.js'
import { type AppDeps, type ProcessDeps, processDeps } from '../process/deps.js'
import { AuthenticationRequiredError, sessionPlugin } from './session.js'

const clients = new WeakMap<AppDeps, JobClient>()
const hubs = new WeakMap<ProcessDeps, JobEventHub>()

/** The JobClient of a web process (one per deps, shared by every route plugin that starts jobs). */
export function jobClient(deps: AppDeps): JobClient {
  let c = clients.get(deps)
  if (!c) {
    c = new JobClient(processDeps(deps))
    clients.set(deps, c)
  }
  return c
}

function eventHub(deps: ProcessDeps): JobEventHub {
  let h = hubs.get(deps)
  if (!h) {
    const blocking = connectQueueRedis(deps.config.redisUrl!, `${deps.instanceId}:job-events`, (err) =>
      deps.logger.debug({ err }, 'job events connection error'),
    )
    h = new JobEventHub(deps.redis, blocking)
    hubs.set(deps, h)
  }
  return h
}

/** Session field of a visitor id: who owns the jobs an anonymous client starts. */
const VISITOR = 'visitor'

/**
 * Who owns jobs started by this request: the logged-in user (401 without one) or, with `anonymous: true`,
 * the client itself: a random visitor id kept in its session (created when there is none), so that the
 * same browser, and only it, follows the job, on any server, also after it logs in.
 * @example const view = await jobClient(deps).submit(shout, request.body, await jobOwner(request, { anonymous: true }))
 */
export async function jobOwner(
  request: FastifyRequest,
  options: { anonymous?: boolean } = {},
): Promise<string> {
  const user = await request.session.user()
  if (user) return `user:${user.id}`
  if (!options.anonymous) throw new AuthenticationRequiredError()
  let visitor = await request.session.get(VISITOR)
  if (!visitor) {
    visitor = randomBytes(16).toString('base64url')
    await request.session.set({ [VISITOR]: visitor })
  }
  return `visitor:${visitor}`
}

/** Every identity under which this request may see a job: its user and its visitor id (401 with neither). */
async function jobReaders(request: FastifyRequest): Promise<string[]> {
  const [user, visitor] = await Promise.all([request.session.user(), request.session.get(VISITOR)])
  const owners = [...(user ? [`user:${user.id}`] : []), ...(visitor ? [`visitor:${visitor}`] : [])]
  if (owners.length === 0) throw new AuthenticationRequiredError()
  return owners
}

/** The request's Idempotency-Key header, if any (400 when malformed). */
export function idempotencyKey(request: FastifyRequest): string | undefined {
  const raw = request.headers['idempotency-key']
  if (raw === undefined) return undefined
  if (Array.isArray(raw) || !/^[\x21-\x7e]{1,200}$/.test(raw)) throw new IdempotencyKeyInvalidError()
  return raw
}

/** Answers a request that started (or, idempotently, found) a job: 202 + Location + `{ id, state }`. */
export function accepted(reply: FastifyReply, view: JobView): FastifyReply {
  return reply
    .code(202)
    .header('location', `/api/jobs/${view.id}`)
    .header('cache-control', 'no-store')
    .send({ id: view.id, state: view.state })
}

const idParams = {
  type: 'object',
  properties: { id: { type: 'string', maxLength: 120 } },
  required: ['id'],
} as const

/** Registers the jobs API on a web server. */
export async function jobRoutes(app: FastifyInstance, appDeps: AppDeps): Promise<void> {
  const deps = processDeps(appDeps)
  await loadJobModules(deps.config.jobModules) // their types become known here too
  await app.register(sessionPlugin, { redis: deps.redis, config: deps.config })
  const client = jobClient(deps)
  app.addHook('onClose', async () => {
    await hubs.get(deps)?.close()
    await client.close()
  })

  app.get<{ Params: { id: string } }>(
    '/api/jobs/:id',
    { schema: { params: idParams, tags: ['jobs'], summary: 'A job: state, progress, result or error' } },
    async (request, reply) => {
      const view = await client.get(request.params.id, await jobReaders(request))
      reply.header('cache-control', 'no-store')
      return view
    },
  )

  app.delete<{ Params: { id: string } }>(
    '/api/jobs/:id',
    { schema: { params: idParams, tags: ['jobs'], summary: 'Cancel a job' } },
    async (request, reply) => {
      const view = await client.cancel(request.params.id, await jobReaders(request))
      reply.code(view.state === 'cancelled' ? 200 : 202).header('cache-control', 'no-store')
      return view
    },
  )

  app.get<{ Params: { id: string } }>(
    '/api/jobs/:id/events',
    { schema: { params: idParams, tags: ['jobs'], summary: 'Server-Sent Events of a job' } },
    async (request, reply) => {
      const owner = await jobReaders(request)
      const view = await client.get(request.params.id, owner) // 404 before the stream starts
      await streamJobEvents(request, reply, {
        view,
        owner,
        client,
        hub: eventHub(deps),
        heartbeatMs: 15_000,
      })
    },
  )
}
