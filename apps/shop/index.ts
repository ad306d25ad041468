/**
 * The shop: Fleet's demo app, and the one `fleet up` runs when no other is named. It uses only Fleet's
 * public API (`import ... from '@fleet-stack/fleet'`): accounts and sessions, a catalog read through both cache patterns,
 * admin writes, reviews, a cart in the session, product images rendered by a job, and nightly
 * recommendations that warm the object cache.
 */
import { type AppDeps, defineApp, type Routes } from '@fleet-stack/fleet'
import { ensureAdmin } from './accounts.js'
import { productImageRoutes, thumbnailsJob } from './images.js'
import { shopSchema } from './migrations/001_shop_schema.js'
import { shopHeavyTasks } from './migrations/006_shop_heavy_tasks.js'
import { ProductPage, RelatedProducts } from './objects.js'
import { installProductPageWarmer } from './page-warmer.js'
import { recommendationRoutes, recommendationsJob } from './recommendations.js'
import { accountRoutes } from './routes/accounts.js'
import { adminRoutes } from './routes/admin.js'
import { cartRoutes } from './routes/cart.js'
import { catalogRoutes } from './routes/catalog.js'
import { reviewRoutes } from './routes/reviews.js'
import { catalogIsEmpty, resetCatalog, seedCatalog } from './seed.js'
import { shopConfig, shopSettings } from './settings.js'

export { ensureAdmin } from './accounts.js'
export { catalogIsEmpty, seedCatalog } from './seed.js'

/** The shop's migrations, in order (ids as released: 001 and 006; Fleet's own 005_jobs applies first). */
export const shopMigrations = [shopSchema, shopHeavyTasks]

/** The shop's job types. */
export const shopJobTypes = [thumbnailsJob, recommendationsJob]

/** Every shop route (accounts, catalog, admin writes, reviews, cart, images, recommendations). */
export const shopRoutes: Routes = async (app, deps) => {
  await accountRoutes(app, deps)
  await catalogRoutes(app, deps)
  await adminRoutes(app, deps)
  await reviewRoutes(app, deps)
  await cartRoutes(app, deps)
  await productImageRoutes(app, deps)
  await recommendationRoutes(app, deps)
}

/** Creates or updates the FLEET_ADMIN_EMAIL account, when set. */
async function ensureConfiguredAdmin(deps: AppDeps): Promise<void> {
  await ensureAdmin(deps.db, shopConfig(deps.config))
}

export default defineApp({
  name: 'shop',
  title: 'Fleet shop API',
  version: '1.0.0',
  settings: shopSettings,
  migrations: shopMigrations,
  routes: [shopRoutes],
  classes: [ProductPage, RelatedProducts],
  jobs: shopJobTypes,
  web: { beforeListen: ensureConfiguredAdmin },
  worker: {
    // The recommendations job assembles the product pages into the object cache after each run.
    beforeStart: async (deps) => installProductPageWarmer(deps.cache),
    afterStop: async () => installProductPageWarmer(undefined),
  },
  seed: {
    isEmpty: catalogIsEmpty,
    reset: resetCatalog,
    async run(db, config, onProgress) {
      const { seedProducts: products, seedReviews: reviews } = shopConfig(config)
      const r = await seedCatalog(db, { products, reviews, onProgress })
      return `seeded ${r.categories} categories, ${r.products} products, ${r.reviews} reviews (${r.users} reviewers) in ${(r.ms / 1000).toFixed(1)} s`
    },
  },
})
