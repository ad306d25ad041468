/**
 * Accounts and the login session: POST /api/users, POST|DELETE /api/session, GET /api/me. Logins go through
 * Fleet's login throttle (per account and per address, FLEET_LOGIN_*): past the limit, 429 with Retry-After.
 */
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { type AppDeps, loginThrottle, requireUser, type SessionUser } from '@fleet-stack/fleet'
import type { FastifyInstance } from 'fastify'
import { authenticate, createUser } from '../accounts.js'
import { InvalidCredentialsError } from '../errors.js'
import { errors, LoginBody, NewUserBody, User } from '../schemas.js'

export async function accountRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const tags = ['accounts']
  const throttle = loginThrottle(deps)

  app.post(
    '/api/users',
    {
      schema: {
        tags,
        summary: 'Create a customer account',
        body: NewUserBody,
        response: { 201: User, ...errors(400, 409, 413, 415) },
      },
    },
    async (request, reply) => {
      const user = await createUser(deps.db, request.body.email, request.body.password)
      return reply.status(201).send(user)
    },
  )

  app.post(
    '/api/session',
    {
      schema: {
        tags,
        summary: 'Log in: a new session id is issued, the cart is kept',
        body: LoginBody,
        response: { 200: User, ...errors(400, 401, 413, 415, 429) },
      },
    },
    async (request) => {
      const attempt = await throttle.attempt({ account: request.body.email, address: request.ip })
      let user: SessionUser
      try {
        user = await authenticate(deps.db, request.body.email, request.body.password)
      } catch (err) {
        // A wrong password stays counted; any other failure says nothing about it and gives the attempt back.
        if (!(err instanceof InvalidCredentialsError)) await attempt.aborted().catch(() => {})
        throw err
      }
      await attempt.succeeded()
      await request.session.login(user)
      return user
    },
  )

  app.delete(
    '/api/session',
    {
      schema: { tags, summary: 'Log out: the session is destroyed', response: { 204: Type.Null() } },
    },
    async (request, reply) => {
      await request.session.destroy()
      return reply.status(204).send(null)
    },
  )

  app.get(
    '/api/me',
    { schema: { tags, summary: 'The logged-in user', response: { 200: User, ...errors(401) } } },
    async (request) => requireUser(request),
  )
}
