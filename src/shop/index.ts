/**
 * The shop: the reference application of Fleet. `shopRoutes` is the plugin the web runtime mounts; it
 * registers the session decorator (unless the runtime already did) and every shop route.
 */
import type { FastifyInstance } from 'fastify'
import type { AppDeps } from '../web/deps.js'
import { sessionPlugin } from '../web/session.js'
import { productImageRoutes } from './images.js'
import { recommendationRoutes } from './recommendations.js'
import { accountRoutes } from './routes/accounts.js'
import { adminRoutes } from './routes/admin.js'
import { cartRoutes } from './routes/cart.js'
import { catalogRoutes } from './routes/catalog.js'
import { reviewRoutes } from './routes/reviews.js'

export { ensureAdmin } from './accounts.js'
export { catalogIsEmpty, seedCatalog } from './seed.js'

/** Registers the shop's routes (accounts, catalog, admin writes, reviews, cart) on the web runtime. */
export async function shopRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  await app.register(sessionPlugin, { redis: deps.redis, config: deps.config })
  await accountRoutes(app, deps)
  await catalogRoutes(app, deps)
  await adminRoutes(app, deps)
  await reviewRoutes(app, deps)
  await cartRoutes(app, deps)
  await productImageRoutes(app, deps)
  await recommendationRoutes(app, deps)
}
