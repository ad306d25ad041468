/** A product's reviews: GET (paginated, newest first) and POST (logged in, once per user). */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { type AppDeps, requireUser } from '@fleet-stack/fleet'
import type { FastifyInstance } from 'fastify'
import { createReview, listReviews } from '../reviews.js'
import { errors, NewReviewBody, ProductId, Review, ReviewListResponse, ReviewsQuery } from '../schemas.js'

export async function reviewRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()

  app.get(
    '/api/products/:id/reviews',
    {
      schema: {
        tags: ['reviews'],
        summary: "A product's reviews, newest first, one page at a time (keyset cursor)",
        params: ProductId,
        querystring: ReviewsQuery,
        response: { 200: ReviewListResponse, ...errors(400, 404) },
      },
    },
    async (request) => listReviews(deps.db, request.params.id, request.query),
  )

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
