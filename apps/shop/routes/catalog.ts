/**
 * Catalog reads: categories, the product listing and the product page, each answered from a cached response
 * (apps/shop/responses.ts): one round trip to the cache Redis and the stored bytes on a hit, a 304 when
 * If-None-Match names the ETag. Underneath, categories and listings (searches too) run their SQL through the
 * query cache, and the product page is assembled from two cached objects, `ProductPage` and
 * `RelatedProducts`. Every answer carries `X-Cache: HIT | MISS | STALE | BYPASS` (of the response entry).
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@fastify/type-provider-typebox'
import type { AppDeps } from '@fleet-stack/fleet'
import type { FastifyInstance } from 'fastify'
import { categoriesResponse, productListResponse, productPageResponse } from '../responses.js'
import { Category, errors, ListQuery, ProductId, ProductListResponse, ProductPage } from '../schemas.js'

export async function catalogRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const tags = ['catalog']

  // The address `fleet up` prints answers with where to go from there, not a 404.
  app.get(
    '/',
    {
      schema: {
        tags,
        summary: 'What this API offers: its main routes and its OpenAPI document',
        response: {
          200: Type.Object({
            name: Type.String(),
            openapi: Type.String(),
            routes: Type.Record(Type.String(), Type.String()),
          }),
        },
      },
    },
    async () => ({
      name: 'Fleet demo shop',
      openapi: '/openapi.json',
      routes: {
        categories: 'GET /api/categories',
        products: 'GET /api/products?category=&q=&sort=&limit=&cursor=',
        product: 'GET /api/products/:id',
        signUp: 'POST /api/users',
        logIn: 'POST /api/session',
        cart: 'GET /api/cart',
      },
    }),
  )

  app.get(
    '/api/categories',
    {
      schema: {
        tags,
        summary: 'Every category with its number of products',
        response: { 200: Type.Object({ items: Type.Array(Category) }) },
      },
    },
    (request, reply) => deps.cache.respond(request, reply, categoriesResponse, null),
  )

  app.get(
    '/api/products',
    {
      schema: {
        tags,
        summary: 'Products, filtered and sorted, one page at a time (keyset cursor)',
        querystring: ListQuery,
        response: { 200: ProductListResponse, ...errors(400) },
      },
    },
    (request, reply) => deps.cache.respond(request, reply, productListResponse, request.query),
  )

  app.get(
    '/api/products/:id',
    {
      schema: {
        tags,
        summary:
          'The product page: product, category, rating, five latest reviews, thumbnail URLs, five related products',
        params: ProductId,
        response: {
          200: ProductPage,
          304: Type.Null({ description: 'Not Modified: If-None-Match names the current ETag' }),
          ...errors(400, 404),
        },
      },
    },
    (request, reply) => deps.cache.respond(request, reply, productPageResponse, request.params.id),
  )
}
