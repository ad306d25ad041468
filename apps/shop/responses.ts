/**
 * The shop's cached responses: the finished answers of its catalog reads, stored whole (body bytes, ETag)
 * and served in one round trip to the cache Redis. Each is built from the shop's cached objects and queries,
 * and takes on their tags: a write that invalidates one of them invalidates the answer too.
 * @example app.get('/api/products/:id', (request, reply) => deps.cache.respond(request, reply, productPageResponse, request.params.id))
 */
import { defineResponse } from '@fleet-stack/fleet'
import { type ListProductsQuery, listCategories, listProducts } from './catalog.js'
import { ProductNotFoundError } from './errors.js'
import { ProductPage, RelatedProducts } from './objects.js'

/** `GET /api/products/:id`: the page and its related products; a missing product's 404 is cached too. */
export const productPageResponse = defineResponse<number>({
  name: 'shop.product-page@1',
  key: (id) => String(id),
  ttl: ProductPage.cache.ttl, // as the objects it is built from: exact invalidation, warmed nightly
  async build(ctx, id) {
    const [page, related] = await Promise.all([ctx.get(ProductPage, id), ctx.get(RelatedProducts, id)])
    if (!page.exists) return { error: new ProductNotFoundError(id) }
    return { body: page.toBody(related), etag: page.etag(related) }
  },
})

/** `GET /api/products`: one page of the listing, by its validated query (cached queries underneath). */
export const productListResponse = defineResponse<ListProductsQuery>({
  name: 'shop.product-list@1',
  key: (q) =>
    JSON.stringify([q.category ?? null, q.q ?? null, q.sort ?? null, q.limit ?? null, q.cursor ?? null]),
  async build(ctx, q) {
    return { body: await listProducts(ctx.reader, q) }
  },
})

/** `GET /api/categories`: every category with its number of products. */
export const categoriesResponse = defineResponse<null>({
  name: 'shop.categories@1',
  key: () => '',
  async build(ctx) {
    return { body: { items: await listCategories(ctx.reader) } }
  },
})
