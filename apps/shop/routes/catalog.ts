/**
 * Catalog reads: categories, the product listing and the product page, all through the cache. Categories
 * and listings (searches too) run their SQL through the query cache (`cache.reader()`); the product page is
 * assembled from two cached objects, `ProductPage` and `RelatedProducts`. Every answer carries
 * `X-Cache: HIT | MISS | STALE | BYPASS` (the least cached of the reads it was built from).
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { type AppDeps, worstStatus } from 'fleet'
import { listCategories, listProducts } from '../catalog.js'
import { ProductNotFoundError } from '../errors.js'
import { ProductPage as CachedProductPage, RelatedProducts } from '../objects.js'
import { Category, errors, ListQuery, ProductId, ProductListResponse, ProductPage } from '../schemas.js'

/** True when an `If-None-Match` header names `etag` (or is `*`). */
function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false
  return header.split(',').some((t) => {
    const v = t.trim()
    return v === '*' || v === etag || v === `W/${etag}`
  })
}

export async function catalogRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const tags = ['catalog']

  app.get(
    '/api/categories',
    {
      schema: {
        tags,
        summary: 'Every category with its number of products',
        response: { 200: Type.Object({ items: Type.Array(Category) }) },
      },
    },
    async (_request, reply) => {
      const r = deps.cache.reader()
      const items = await listCategories(r.db)
      reply.header('x-cache', r.status())
      return { items }
    },
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
    async (request, reply) => {
      const r = deps.cache.reader()
      const list = await listProducts(r.db, request.query)
      reply.header('x-cache', r.status())
      return list
    },
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
    async (request, reply) => {
      const id = request.params.id
      const [page, related] = await Promise.all([
        deps.cache.get(CachedProductPage, id),
        deps.cache.get(RelatedProducts, id),
      ])
      reply.header('x-cache', worstStatus(page.status, related.status))
      if (!page.value.exists) throw new ProductNotFoundError(id)
      const etag = page.value.etag(related.value)
      reply.header('etag', etag)
      if (matches(request.headers['if-none-match'], etag))
        return reply
          .code(304)
          .serializer(() => '')
          .send(null) // no body
      return page.value.toBody(related.value)
    },
  )
}
