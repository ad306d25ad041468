/** Catalog reads: categories, the product listing and the product page. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import type { AppDeps } from '../../web/deps.js'
import { getProductPage, listCategories, listProducts } from '../catalog.js'
import { ProductNotFoundError } from '../errors.js'
import { Category, errors, ListQuery, ProductId, ProductListResponse, ProductPage } from '../schemas.js'

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
    async () => ({ items: await listCategories(deps.db) }),
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
    async (request) => listProducts(deps.db, request.query),
  )

  app.get(
    '/api/products/:id',
    {
      schema: {
        tags,
        summary: 'The product page: product, category, rating, five latest reviews, five related products',
        params: ProductId,
        response: { 200: ProductPage, ...errors(400, 404) },
      },
    },
    async (request, reply) => {
      const page = await getProductPage(deps.db, request.params.id)
      if (!page) throw new ProductNotFoundError(request.params.id)
      reply.header('etag', `"${page.version}"`)
      return page
    },
  )
}
