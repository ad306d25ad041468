/**
 * The shop's cached objects, for `GET /api/products/:id`. The page is split in two so that invalidation stays
 * precise: `ProductPage` (the product, its category, rating and latest reviews) changes only with product
 * `id`, its reviews or its category; `RelatedProducts` (other products of the category) changes with any
 * product of the category. The route reads both in parallel (two concurrent round trips).
 * @example
 * const [page, related] = await Promise.all([cache.get(ProductPage, id), cache.get(RelatedProducts, id)])
 * reply.header('x-cache', worstStatus(page.status, related.status)).header('etag', page.value.etag())
 * return { ...page.value.toJSON(), related: related.value.items }
 */
import type { Queryable } from '../db/database.js'
import {
  getCategory,
  getProduct,
  getRatingSummary,
  latestReviews,
  type Product,
  relatedProducts,
} from '../shop/catalog.js'
import { ProductNotFoundError } from '../shop/errors.js'
import type { AssembleContext, CacheStatus, ObjectSpec } from './cache.js'

/** One review on the product page. */
export class PageReview {
  id = 0
  productId = 0
  userId = 0
  rating = 0
  body = ''
  createdAt = new Date(0)
}

/** The product page (without related products): an instance comes back from the cache with its methods. */
export class ProductPage {
  id = 0
  slug = ''
  name = ''
  description = ''
  priceCents = 0
  currency = 'EUR'
  stock = 0
  categoryId = 0
  createdAt = new Date(0)
  updatedAt = new Date(0)
  version = 0
  category = { id: 0, slug: '', name: '' }
  rating: { count: number; average: number | null } = { count: 0, average: null }
  reviews: PageReview[] = []

  /** The ETag of the page: the product's version plus the review count (a new review changes the page). */
  etag(): string {
    return `"${this.version}.${this.rating.count}.${this.reviews[0]?.id ?? 0}"`
  }

  inStock(): boolean {
    return this.stock > 0
  }

  /** The plain object the API answers with (the route adds `related`). */
  toJSON(): Omit<ProductPage, 'etag' | 'inStock' | 'toJSON'> {
    return { ...this }
  }

  static cache: ObjectSpec<ProductPage, number> = {
    name: 'shop.ProductPage',
    key: (id) => String(id),
    // Known before loading: the product row and the reviews that reference it.
    tags: (id) => [`products:${id}`, `reviews.product_id:${id}`],
    nested: [PageReview],
    async assemble(ctx: AssembleContext, id: number): Promise<ProductPage> {
      const db: Queryable = ctx.db
      const product = await getProduct(db, id)
      if (!product) throw new ProductNotFoundError(id)
      await ctx.depend([`categories:${product.categoryId}`]) // before reading the category
      const [category, rating, reviews] = await Promise.all([
        getCategory(db, product.categoryId),
        getRatingSummary(db, id),
        latestReviews(db, id, 5),
      ])
      if (!category) throw new ProductNotFoundError(id) // deleted between the two reads
      return Object.assign(new ProductPage(), product, {
        category,
        rating,
        reviews: reviews.map((r) => Object.assign(new PageReview(), r)),
      })
    },
  }
}

/** Up to five other products of the product's category, closest in price first. */
export class RelatedProducts {
  productId = 0
  items: Product[] = []

  static cache: ObjectSpec<RelatedProducts, number> = {
    name: 'shop.RelatedProducts',
    key: (id) => String(id),
    tags: (id) => [`products:${id}`], // its category and price choose the list
    async assemble(ctx: AssembleContext, id: number): Promise<RelatedProducts> {
      const product = await getProduct(ctx.db, id)
      if (!product) throw new ProductNotFoundError(id)
      await ctx.depend([`products.category_id:${product.categoryId}`]) // any product of the category
      const items = await relatedProducts(ctx.db, product, 5)
      return Object.assign(new RelatedProducts(), { productId: id, items })
    },
  }
}

const ORDER: Record<CacheStatus, number> = { HIT: 0, STALE: 1, MISS: 2, BYPASS: 3 }

/** The X-Cache value of a response built from several reads: the least cached of them. */
export function worstStatus(...statuses: CacheStatus[]): CacheStatus {
  return statuses.reduce((a, b) => (ORDER[b] > ORDER[a] ? b : a), 'HIT' as CacheStatus)
}
