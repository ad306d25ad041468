/**
 * Recommendations, the shop's second heavy task: for every product, the products most often reviewed by
 * the same users. `POST /api/admin/recommendations` starts a `shop.recommendations` job; workers also run it
 * on a schedule (FLEET_RECOMMENDATIONS_CRON, nightly by default). The counting runs on a worker thread
 * (recommendations-cpu.ts); the result replaces the table `product_recommendations` in one transaction.
 * Afterwards the job calls the product-page warmer, if one is installed, so the pages are assembled into the
 * object cache ahead of the first request.
 */

import {
  type AppDeps,
  accepted,
  type Database,
  defineJob,
  idempotencyKey,
  jobClient,
  requireAdmin,
} from '@fleet-stack/fleet'
import type { Logger } from '@fleet-stack/fleet/types'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import type { CoReviewInput, CoReviewResult } from './recommendations-cpu.js'
import { shopConfig } from './settings.js'

/** What the warmer gets: the products whose recommendations changed (every product of the run). */
export type WarmProductPages = (input: {
  db: Database
  productIds: readonly number[]
  logger: Logger
  signal: AbortSignal
}) => Promise<void>

let warmer: WarmProductPages | undefined

/**
 * Installs the hook that assembles product pages into the object cache after each recommendations run
 * (the cache component calls this in the worker process). Pass undefined to remove it.
 * @example setProductPageWarmer(async ({ productIds }) => { for (const id of productIds) await cache.get(ProductPage, id) })
 */
export function setProductPageWarmer(hook: WarmProductPages | undefined): void {
  warmer = hook
}

const Payload = Type.Object({
  perProduct: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 50, description: 'recommendations per product' }),
  ),
})

export const recommendationsJob = defineJob({
  name: 'shop.recommendations',
  payload: Payload,
  concurrency: 1,
  attempts: 3,
  timeout: 10 * 60_000,
  cpu: { module: new URL('./recommendations-cpu.js', import.meta.url), export: 'coReviews' },
  schedule: { cron: (config) => shopConfig(config).recommendationsCron, payload: {} },
  process: async (ctx) => {
    const perProduct = ctx.payload.perProduct ?? 5
    const { rows } = await ctx.db.query<{ user_id: number; product_id: number }>(
      'SELECT DISTINCT user_id, product_id FROM reviews ORDER BY user_id, product_id',
    )
    const users = new Float64Array(rows.length)
    const products = new Float64Array(rows.length)
    rows.forEach((r, i) => {
      users[i] = r.user_id
      products[i] = r.product_id
    })
    await ctx.progress(5)
    const input: CoReviewInput = { users, products, perProduct }
    return ctx.cpu<CoReviewInput, CoReviewResult>(input, [
      users.buffer as ArrayBuffer,
      products.buffer as ArrayBuffer,
    ])
  },
  commit: async (tx, out, ctx) => {
    await tx.query('DELETE FROM product_recommendations')
    if (out.product.length > 0) {
      await tx.query(
        `INSERT INTO product_recommendations (product_id, rank, recommended_id, shared_users)
         SELECT t.product_id, t.rank, t.recommended_id, t.shared_users
           FROM unnest($1::bigint[], $2::smallint[], $3::bigint[], $4::int[])
                AS t (product_id, rank, recommended_id, shared_users)
          WHERE EXISTS (SELECT 1 FROM products p WHERE p.id = t.product_id)
            AND EXISTS (SELECT 1 FROM products p WHERE p.id = t.recommended_id)`,
        [out.product, out.rank, out.recommended, out.shared],
      )
    }
    await tx.query(
      'INSERT INTO recommendation_runs (job_id, products, pairs, per_product) VALUES ($1, $2, $3, $4)',
      [ctx.id, out.products, out.product.length, out.perProduct],
    )
    return { products: out.products, recommendations: out.product.length, perProduct: out.perProduct }
  },
  completed: async (_result, ctx) => {
    // After the commit (best effort): assemble the product pages ahead of the first request.
    if (!warmer) return
    const { rows } = await ctx.db.query<{ product_id: number }>(
      'SELECT DISTINCT product_id FROM product_recommendations ORDER BY product_id',
    )
    await warmer({
      db: ctx.db,
      productIds: rows.map((r) => r.product_id),
      logger: ctx.logger,
      signal: ctx.signal,
    })
  },
})

/** The recommended products of one product, best first. */
export async function recommendationsFor(
  db: Database,
  productId: number,
): Promise<{ id: number; name: string; slug: string; sharedUsers: number }[]> {
  const { rows } = await db.query<{ id: number; name: string; slug: string; shared_users: number }>(
    `SELECT p.id, p.name, p.slug, r.shared_users FROM product_recommendations r
       JOIN products p ON p.id = r.recommended_id
      WHERE r.product_id = $1 ORDER BY r.rank`,
    [productId],
  )
  return rows.map((r) => ({ id: r.id, name: r.name, slug: r.slug, sharedUsers: r.shared_users }))
}

/** `POST /api/admin/recommendations` (admin, 202) and `GET /api/products/:id/recommendations`. */
export async function recommendationRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const jobs = jobClient(deps)

  app.post<{ Body: unknown }>(
    '/api/admin/recommendations',
    {
      schema: {
        tags: ['admin'],
        summary: 'Recompute the recommendations (a job; 202 with its URL); body: { perProduct? }',
      },
    },
    async (request, reply) => {
      const admin = await requireAdmin(request)
      const view = await jobs.submit(recommendationsJob, request.body ?? {}, `user:${admin.id}`, {
        idempotencyKey: idempotencyKey(request),
      })
      return accepted(reply, view)
    },
  )

  app.get<{ Params: { id: number } }>(
    '/api/products/:id/recommendations',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Products most often reviewed by the reviewers of this one',
        params: Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }),
      },
    },
    async (request) => ({ items: await recommendationsFor(deps.db, request.params.id) }),
  )
}
