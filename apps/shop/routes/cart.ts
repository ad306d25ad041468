/** The cart, kept in the session: GET /api/cart, PUT|DELETE /api/cart/items/:productId. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { AppDeps } from '@fleet-stack/fleet'
import type { FastifyInstance } from 'fastify'
import { readCart, removeCartItem, setCartItem } from '../cart.js'
import { CartItemBody, CartItemParams, CartResponse, errors } from '../schemas.js'

export async function cartRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const tags = ['cart']

  app.get(
    '/api/cart',
    {
      schema: {
        tags,
        summary: 'The cart of this session (empty without a session)',
        response: { 200: CartResponse },
      },
    },
    async (request) => readCart(deps.db, request.session),
  )

  app.put(
    '/api/cart/items/:productId',
    {
      schema: {
        tags,
        summary: 'Set the quantity of one product in the cart (creates the session when needed)',
        params: CartItemParams,
        body: CartItemBody,
        response: { 200: CartResponse, ...errors(400, 404, 409, 413, 415) },
      },
    },
    async (request) => {
      await setCartItem(deps.db, request.session, request.params.productId, request.body.quantity)
      return readCart(deps.db, request.session)
    },
  )

  app.delete(
    '/api/cart/items/:productId',
    {
      schema: {
        tags,
        summary: 'Remove one product from the cart',
        params: CartItemParams,
        response: { 200: CartResponse, ...errors(400) },
      },
    },
    async (request) => {
      await removeCartItem(request.session, request.params.productId)
      return readCart(deps.db, request.session)
    },
  )
}
