/** POST /api/products/:id/reviews: a logged-in user reviews a product, once. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import type { AppDeps } from '../../web/deps.js'
import { requireUser } from '../../web/session.js'
import { createReview } from '../reviews.js'
import { errors, NewReviewBody, ProductId, Review } from '../schemas.js'

export async function reviewRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.post(
    '/api/products/:id/reviews',
    {
      schema: {
        tags: ['reviews'],
        summary: 'Review a product (logged in; one review per user and product)',
        params: ProductId,
        body: NewReviewBody,
        response: { 201: Review, ...errors(400, 401, 404, 409, 413, 415) },
      },
    },
    async (request, reply) => {
      const user = await requireUser(request)
      const review = await createReview(deps.db, {
        productId: request.params.id,
        userId: user.id,
        rating: request.body.rating,
        body: request.body.body ?? '',
      })
      return reply.status(201).send(review)
    },
  )
}
