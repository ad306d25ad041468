/**
 * Catalog reads. Each is one small function over `Queryable` so the cache can wrap it (query cache) or
 * assemble it into a cached object (the product page). Listing uses keyset pagination on (sort key, id):
 * a page never skips or repeats a product while the catalog is unchanged, whatever the sort.
 */

import type { Queryable } from '@fleet-stack/fleet'
import { decodeCursor, encodeCursor, exactTime, type KeyKind } from './cursor.js'
import { UnknownCategoryError } from './errors.js'

export interface Product {
  id: number
  slug: string
  name: string
  description: string
  priceCents: number
  currency: string
  stock: number
  categoryId: number
  createdAt: Date
  updatedAt: Date
  version: number
}

export interface Category {
  id: number
  slug: string
  name: string
  productCount: number
}

export interface Review {
  id: number
  productId: number
  userId: number
  rating: number
  body: string
  createdAt: Date
}

export interface ProductPage extends Product {
  category: { id: number; slug: string; name: string }
  rating: { count: number; average: number | null }
  reviews: Review[]
  related: Product[]
  /** Thumbnail URLs by size, once they exist. */
  images: Record<string, string>
}

export const SORTS = ['price', '-price', 'name', '-created'] as const
export type Sort = (typeof SORTS)[number]

export interface ListProductsQuery {
  /** Category slug or id. */
  category?: string
  /** Full-text search over name and description. */
  q?: string
  sort?: Sort
  limit?: number
  cursor?: string
}

export interface ProductList {
  items: Product[]
  nextCursor: string | null
}

/** Columns of a Product. */
export const PRODUCT_COLUMNS = `p.id, p.slug, p.name, p.description, p.price_cents, p.currency, p.stock,
  p.category_id, p.created_at, p.updated_at, p.version`

export interface ProductRow {
  [key: string]: unknown
  id: number
  slug: string
  name: string
  description: string
  price_cents: number
  currency: string
  stock: number
  category_id: number
  created_at: Date
  updated_at: Date
  version: number
}

export function toProduct(r: ProductRow): Product {
  return {
    id: r.id,
    slug: r.slug,
    name: r.name,
    description: r.description,
    priceCents: r.price_cents,
    currency: r.currency,
    stock: r.stock,
    categoryId: r.category_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    version: r.version,
  }
}

const ORDER: Record<Sort, { column: string; cast: string; kind: KeyKind; dir: 'ASC' | 'DESC' }> = {
  price: { column: 'p.price_cents', cast: 'int', kind: 'int', dir: 'ASC' },
  '-price': { column: 'p.price_cents', cast: 'int', kind: 'int', dir: 'DESC' },
  name: { column: 'p.name', cast: 'text', kind: 'text', dir: 'ASC' },
  '-created': { column: 'p.created_at', cast: 'timestamptz', kind: 'time', dir: 'DESC' },
}

/** Every category with its number of products, by name. */
export async function listCategories(db: Queryable): Promise<Category[]> {
  const { rows } = await db.query<{ id: number; slug: string; name: string; product_count: number }>(
    `SELECT c.id, c.slug, c.name, count(p.id)::int AS product_count
     FROM categories c LEFT JOIN products p ON p.category_id = c.id
     GROUP BY c.id ORDER BY c.name, c.id`,
  )
  return rows.map((r) => ({ id: r.id, slug: r.slug, name: r.name, productCount: r.product_count }))
}

/** The id of the category with this slug (or id); UnknownCategoryError naming `field` otherwise. */
export async function resolveCategory(db: Queryable, ref: string | number, field: string): Promise<number> {
  const byId = typeof ref === 'number' || /^\d{1,15}$/.test(ref)
  const { rows } = await db.query<{ id: number }>(
    byId ? 'SELECT id FROM categories WHERE id = $1' : 'SELECT id FROM categories WHERE slug = $1',
    [byId ? Number(ref) : ref],
  )
  if (rows.length === 0) throw new UnknownCategoryError(ref, field)
  return rows[0].id
}

/**
 * One page of products, filtered by category and full-text query, in a stable order.
 * @example const page2 = await listProducts(db, { sort: 'price', cursor: page1.nextCursor })
 */
export async function listProducts(db: Queryable, query: ListProductsQuery): Promise<ProductList> {
  const sort = query.sort ?? '-created'
  const limit = query.limit ?? 20
  const order = ORDER[sort]
  const where: string[] = []
  const params: unknown[] = []
  if (query.category !== undefined) {
    params.push(await resolveCategory(db, query.category, 'category'))
    where.push(`p.category_id = $${params.length}`)
  }
  if (query.q !== undefined && query.q.trim() !== '') {
    params.push(query.q)
    where.push(`p.search @@ plainto_tsquery('simple', $${params.length})`)
  }
  if (query.cursor) {
    const c = decodeCursor(query.cursor, `sort=${sort}`, order.kind)
    params.push(c.key, c.id)
    const cmp = order.dir === 'ASC' ? '>' : '<'
    where.push(
      `(${order.column}, p.id) ${cmp} ($${params.length - 1}::${order.cast}, $${params.length}::bigint)`,
    )
  }
  params.push(limit + 1)
  const { rows } = await db.query<ProductRow & { sort_key: string | number }>(
    `SELECT ${PRODUCT_COLUMNS}, ${order.kind === 'time' ? exactTime(order.column) : order.column} AS sort_key
     FROM products p
     ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY ${order.column} ${order.dir}, p.id ${order.dir}
     LIMIT $${params.length}`,
    params,
  )
  const more = rows.length > limit
  const page = more ? rows.slice(0, limit) : rows
  const last = page[page.length - 1]
  return {
    items: page.map(toProduct),
    nextCursor: more && last ? encodeCursor(`sort=${sort}`, last.sort_key, last.id) : null,
  }
}

/** The product with this id, or undefined. */
export async function getProduct(db: Queryable, id: number): Promise<Product | undefined> {
  const { rows } = await db.query<ProductRow>(`SELECT ${PRODUCT_COLUMNS} FROM products p WHERE p.id = $1`, [
    id,
  ])
  return rows[0] ? toProduct(rows[0]) : undefined
}

/** The products with these ids (missing ones are left out), in no particular order. */
export async function getProducts(db: Queryable, ids: readonly number[]): Promise<Product[]> {
  if (ids.length === 0) return []
  const { rows } = await db.query<ProductRow>(
    `SELECT ${PRODUCT_COLUMNS} FROM products p WHERE p.id = ANY($1::bigint[])`,
    [ids],
  )
  return rows.map(toProduct)
}

export async function getCategory(
  db: Queryable,
  id: number,
): Promise<{ id: number; slug: string; name: string } | undefined> {
  const { rows } = await db.query<{ id: number; slug: string; name: string }>(
    'SELECT id, slug, name FROM categories WHERE id = $1',
    [id],
  )
  return rows[0]
}

/** Number of reviews and their average rating (null without reviews), to two decimals. */
export async function getRatingSummary(
  db: Queryable,
  productId: number,
): Promise<{ count: number; average: number | null }> {
  const { rows } = await db.query<{ count: number; average: string | null }>(
    'SELECT count(*)::int AS count, round(avg(rating), 2)::text AS average FROM reviews WHERE product_id = $1',
    [productId],
  )
  return { count: rows[0].count, average: rows[0].average === null ? null : Number(rows[0].average) }
}

/** The `limit` latest reviews of a product, newest first. */
export async function latestReviews(db: Queryable, productId: number, limit = 5): Promise<Review[]> {
  const { rows } = await db.query<{
    id: number
    product_id: number
    user_id: number
    rating: number
    body: string
    created_at: Date
  }>(
    `SELECT id, product_id, user_id, rating, body, created_at FROM reviews
     WHERE product_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
    [productId, limit],
  )
  return rows.map((r) => ({
    id: r.id,
    productId: r.product_id,
    userId: r.user_id,
    rating: r.rating,
    body: r.body,
    createdAt: r.created_at,
  }))
}

/** Up to `limit` other products of the same category, closest in price first. */
export async function relatedProducts(db: Queryable, product: Product, limit = 5): Promise<Product[]> {
  const { rows } = await db.query<ProductRow>(
    `SELECT ${PRODUCT_COLUMNS} FROM products p
     WHERE p.category_id = $1 AND p.id <> $2
     ORDER BY abs(p.price_cents - $3), p.id LIMIT $4`,
    [product.categoryId, product.id, product.priceCents, limit],
  )
  return rows.map(toProduct)
}

/**
 * URLs of a product's thumbnails by size (`{ "64": "/api/products/42/image/64?v=..." }`), once the
 * thumbnails job wrote them; `{}` before. The `v` names the thumbnail's content, so a URL never changes meaning.
 */
export async function productImageUrls(db: Queryable, productId: number): Promise<Record<string, string>> {
  const { rows } = await db.query<{ size: number; etag: string }>(
    'SELECT size, etag FROM product_thumbnails WHERE product_id = $1 ORDER BY size',
    [productId],
  )
  return Object.fromEntries(
    rows.map((r) => [String(r.size), `/api/products/${productId}/image/${r.size}?v=${r.etag}`]),
  )
}

/** Everything the product page shows, or undefined when the product does not exist. */
export async function getProductPage(db: Queryable, id: number): Promise<ProductPage | undefined> {
  const product = await getProduct(db, id)
  if (!product) return undefined
  const [category, rating, reviews, related, images] = await Promise.all([
    getCategory(db, product.categoryId),
    getRatingSummary(db, id),
    latestReviews(db, id, 5),
    relatedProducts(db, product, 5),
    productImageUrls(db, id),
  ])
  if (!category) return undefined // deleted between the two reads
  return { ...product, category, rating, reviews, related, images }
}
