/**
 * The shop's cached objects, for `GET /api/products/:id`. The page is split in two so that invalidation stays
 * precise: `ProductPage` (the product, its category, rating, latest reviews and thumbnail URLs) changes only
 * with product `id`, its reviews, its thumbnails or its category; `RelatedProducts` (other products of the
 * category) changes with any product of the category. The route reads both in parallel (two concurrent
 * round trips).
 *
 * A product that does not exist is cached too, as an instance with `exists === false` (tagged by the
 * product's row, so creating product `id` later invalidates it): a flood of requests for a missing id costs
 * one query, and "not found" is not a loader error.
 * @example
 * const [page, related] = await Promise.all([cache.get(ProductPage, id), cache.get(RelatedProducts, id)])
 * if (!page.value.exists) throw new ProductNotFoundError(id)
 * reply.header('x-cache', worstStatus(page.status, related.status)).header('etag', page.value.etag(related.value))
 * return page.value.toBody(related.value)
 */
import { createHash } from 'node:crypto'
import type { AssembleContext, ObjectSpec, Queryable } from '@fleet-stack/fleet'
import {
  getCategory,
  getProduct,
  getRatingSummary,
  latestReviews,
  type Product,
  productImageUrls,
  relatedProducts,
} from '../shop/catalog.js'

/** A short digest of what a cached object shows (for the ETag), computed once when it is assembled. */
function digestOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('base64url').slice(0, 12)
}

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
  /** False for a product that does not exist (a cached "not found"); the other fields are then defaults. */
  exists = true
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
  /** Thumbnail URLs by size (`"64"`, `"256"`, `"1024"`), once the thumbnails job wrote them. */
  images: Record<string, string> = {}
  /** Digest of everything above, set when assembled. */
  digest = ''

  /** The cached answer for a product that does not exist. */
  static notFound(id: number): ProductPage {
    return Object.assign(new ProductPage(), { exists: false, id })
  }

  /**
   * The strong ETag of the response: `"<version>-<digest>"`, where the digest covers the page (reviews,
   * rating, images, category) and the related products. The version comes first, so the same value works as
   * `If-Match` on an admin write (which compares the version).
   */
  etag(related?: RelatedProducts): string {
    return `"${this.version}-${this.digest}${related?.digest ?? ''}"`
  }

  inStock(): boolean {
    return this.stock > 0
  }

  /** The plain object the API answers with, without `related`. */
  toJSON(): Omit<ProductPage, 'etag' | 'inStock' | 'toJSON' | 'toBody' | 'exists' | 'digest'> {
    const { exists: _e, digest: _d, ...page } = this
    return page
  }

  /** The body of `GET /api/products/:id`: the page and its related products. */
  toBody(related: RelatedProducts): ReturnType<ProductPage['toJSON']> & { related: Product[] } {
    return { ...this.toJSON(), related: related.items }
  }

  static cache: ObjectSpec<ProductPage, number> = {
    name: 'shop.ProductPage@2', // @2: exists, images, digest (entries of the old shape are not read)
    key: (id) => String(id),
    // Invalidation is exact (row tags from triggers), so a page may live a day: the nightly
    // recommendations run warms every recommended page, and a write replaces it at once.
    ttl: 24 * 3_600_000,
    // Known before loading: the product row and the rows that reference it (reviews, thumbnails).
    tags: (id) => [`products:${id}`, `reviews.product_id:${id}`, `product_thumbnails.product_id:${id}`],
    nested: [PageReview],
    async assemble(ctx: AssembleContext, id: number): Promise<ProductPage> {
      const db: Queryable = ctx.db
      const product = await getProduct(db, id)
      if (!product) return ProductPage.notFound(id)
      await ctx.depend([`categories:${product.categoryId}`]) // before reading the category
      const [category, rating, reviews, images] = await Promise.all([
        getCategory(db, product.categoryId),
        getRatingSummary(db, id),
        latestReviews(db, id, 5),
        productImageUrls(db, id),
      ])
      if (!category) return ProductPage.notFound(id) // deleted between the two reads
      const page = Object.assign(new ProductPage(), product, {
        category,
        rating,
        reviews: reviews.map((r) => Object.assign(new PageReview(), r)),
        images,
      })
      page.digest = digestOf(page.toJSON())
      return page
    },
  }
}

/** Up to five other products of the product's category, closest in price first. */
export class RelatedProducts {
  productId = 0
  items: Product[] = []
  /** Digest of `items`, set when assembled (part of the page's ETag). */
  digest = ''

  static cache: ObjectSpec<RelatedProducts, number> = {
    name: 'shop.RelatedProducts@2',
    key: (id) => String(id),
    ttl: 24 * 3_600_000, // as ProductPage: exact invalidation, warmed nightly
    tags: (id) => [`products:${id}`], // its category and price choose the list
    async assemble(ctx: AssembleContext, id: number): Promise<RelatedProducts> {
      const product = await getProduct(ctx.db, id)
      // Not found: empty, tagged by the product's row like the page (a later creation invalidates it).
      if (!product) return Object.assign(new RelatedProducts(), { productId: id })
      await ctx.depend([`products.category_id:${product.categoryId}`]) // any product of the category
      const items = await relatedProducts(ctx.db, product, 5)
      return Object.assign(new RelatedProducts(), { productId: id, items, digest: digestOf(items) })
    },
  }
}
