/** Reviews: one per user and product, written by logged-in users; read newest first, a page at a time. */

import type { Database, Queryable } from '@fleet-stack/fleet'
import type { Review } from './catalog.js'
import { decodeCursor, encodeCursor, exactTime } from './cursor.js'
import { ProductNotFoundError, ReviewExistsError } from './errors.js'

/** Adds a review; 404 when the product does not exist, 409 when this user already reviewed it. */
export async function createReview(
  db: Database,
  input: { productId: number; userId: number; rating: number; body: string },
): Promise<Review> {
  try {
    const { rows } = await db.query<{ id: number; created_at: Date }>(
      `INSERT INTO reviews (product_id, user_id, rating, body) VALUES ($1, $2, $3, $4)
       RETURNING id, created_at`,
      [input.productId, input.userId, input.rating, input.body],
    )
    return { id: rows[0].id, ...input, createdAt: rows[0].created_at }
  } catch (err) {
    const e = err as { code?: string; constraint?: string }
    if (e.code === '23505' && e.constraint === 'reviews_product_user_key')
      throw new ReviewExistsError(input.productId)
    if (e.code === '23503' && e.constraint === 'reviews_product_id_fkey')
      throw new ProductNotFoundError(input.productId)
    throw err
  }
}

/**
 * One page of a product's reviews, newest first (keyset on (created_at, id)); 404 when the product does
 * not exist.
 */
export async function listReviews(
  db: Queryable,
  productId: number,
  options: { limit?: number; cursor?: string } = {},
): Promise<{ items: Review[]; nextCursor: string | null }> {
  const limit = options.limit ?? 20
  const scope = `reviews=${productId}`
  const params: unknown[] = [productId, limit + 1]
  let after = ''
  if (options.cursor) {
    const c = decodeCursor(options.cursor, scope, 'time')
    params.push(c.key, c.id)
    after = 'AND (created_at, id) < ($3::timestamptz, $4::bigint)'
  }
  const { rows } = await db.query<{
    id: number
    product_id: number
    user_id: number
    rating: number
    body: string
    created_at: Date
    sort_key: string
  }>(
    `SELECT id, product_id, user_id, rating, body, created_at, ${exactTime('created_at')} AS sort_key
     FROM reviews WHERE product_id = $1 ${after}
     ORDER BY created_at DESC, id DESC LIMIT $2`,
    params,
  )
  if (rows.length === 0 && !options.cursor) {
    const exists = await db.query('SELECT 1 FROM products WHERE id = $1', [productId])
    if (exists.rows.length === 0) throw new ProductNotFoundError(productId)
  }
  const more = rows.length > limit
  const page = more ? rows.slice(0, limit) : rows
  const last = page[page.length - 1]
  return {
    items: page.map((r) => ({
      id: r.id,
      productId: r.product_id,
      userId: r.user_id,
      rating: r.rating,
      body: r.body,
      createdAt: r.created_at,
    })),
    nextCursor: more && last ? encodeCursor(scope, last.sort_key, last.id) : null,
  }
}
