/**
 * Admin writes to the catalog. Each answers with the product's new version (in the body and as ETag); a
 * client may send `If-Match: "<version>"` (or `expectedVersion` in a PATCH body) to apply a change only
 * to the version it read, else 409 FLEET_E_SHOP_VERSION_MISMATCH.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { type AppDeps, requireAdmin } from '@fleet-stack/fleet'
import type { FastifyInstance } from 'fastify'
import { InvalidIfMatchError } from '../errors.js'
import { createProduct, deleteProduct, updateProduct } from '../products.js'
import {
  DeletedResponse,
  errors,
  IfMatchHeaders,
  NewProductBody,
  Product,
  ProductId,
  ProductPatchBody,
} from '../schemas.js'

/**
 * The version an `If-Match` header names: `"3"`, `W/"3"`, `3`, or the product page's ETag `"3-<digest>"`
 * (its version part: a write changes the product row, whose version that is); undefined for none or `*`.
 */
export function parseIfMatch(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '*') return undefined
  const m = /^\s*(?:W\/)?"?(\d{1,9})(?:-[A-Za-z0-9_-]{1,64})?"?\s*$/.exec(header)
  if (!m || Number(m[1]) < 1) throw new InvalidIfMatchError(header)
  return Number(m[1])
}

export async function adminRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const tags = ['admin']

  app.post(
    '/api/products',
    {
      schema: {
        tags,
        summary: 'Create a product (admin)',
        body: NewProductBody,
        response: { 201: Product, ...errors(400, 401, 403, 409, 413, 415) },
      },
    },
    async (request, reply) => {
      await requireAdmin(request)
      const product = await createProduct(deps.db, request.body)
      reply.header('etag', `"${product.version}"`).header('location', `/api/products/${product.id}`)
      return reply.status(201).send(product)
    },
  )

  app.patch(
    '/api/products/:id',
    {
      schema: {
        tags,
        summary: 'Change a product (admin); the version increments',
        params: ProductId,
        headers: IfMatchHeaders,
        body: ProductPatchBody,
        response: { 200: Product, ...errors(400, 401, 403, 404, 409, 413, 415) },
      },
    },
    async (request, reply) => {
      await requireAdmin(request)
      const { expectedVersion, ...patch } = request.body
      const expected = parseIfMatch(request.headers['if-match']) ?? expectedVersion
      const product = await updateProduct(deps.db, request.params.id, patch, expected)
      reply.header('etag', `"${product.version}"`)
      return product
    },
  )

  app.delete(
    '/api/products/:id',
    {
      schema: {
        tags,
        summary: 'Delete a product and its reviews (admin)',
        params: ProductId,
        headers: IfMatchHeaders,
        response: { 200: DeletedResponse, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      await requireAdmin(request)
      const expected = parseIfMatch(request.headers['if-match'])
      const result = await deleteProduct(deps.db, request.params.id, expected)
      return { ...result, deleted: true }
    },
  )
}
