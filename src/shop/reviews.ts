/** Reviews by logged-in users: one per user and product. */
import type { Database } from '../db/database.js'
import type { Review } from './catalog.js'
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
