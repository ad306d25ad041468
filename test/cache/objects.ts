/** A ProductPage-like cached class for the tests: assembled from three queries, with every type that must round-trip. */
import type { AssembleContext, ObjectSpec } from '../../src/cache/cache.js'

export class TestReview {
  rating = 0
  at = new Date(0)
  stars(): string {
    return '*'.repeat(this.rating)
  }
}

/** Hooks the tests use to slow or count assembly (per process; tests run one file per process). */
export const hooks = {
  assembled: 0,
  /** Awaited after the product row is read, before the rest. */
  afterProduct: async (_id: number): Promise<void> => {},
}

export class TestPage {
  id = 0
  name = ''
  priceCents = 0n
  category = ''
  createdAt = new Date(0)
  attrs = new Map<string, number>()
  labels = new Set<string>()
  blob = Buffer.alloc(0)
  reviews: TestReview[] = []

  title(): string {
    return `${this.name} (${this.category})`
  }

  static cache: ObjectSpec<TestPage, number> = {
    name: 'TestPage',
    key: (id) => String(id),
    tags: (id) => [`products:${id}`, `reviews.product_id:${id}`],
    nested: [TestReview],
    async assemble(ctx: AssembleContext, id: number): Promise<TestPage> {
      hooks.assembled++
      const p = (
        await ctx.db.query<{
          id: number
          name: string
          price_cents: number
          category_id: number
          created_at: Date
        }>('SELECT id, name, price_cents, category_id, created_at FROM products WHERE id = $1', [id])
      ).rows[0]
      if (!p) throw new Error(`no product ${id}`)
      await hooks.afterProduct(id)
      // The category is found from the product row: depend on it before reading it.
      await ctx.depend([`categories:${p.category_id}`])
      const c = await ctx.db.query<{ name: string }>('SELECT name FROM categories WHERE id = $1', [
        p.category_id,
      ])
      const r = await ctx.db.query<{ rating: number; created_at: Date }>(
        'SELECT rating, created_at FROM reviews WHERE product_id = $1 ORDER BY id',
        [id],
      )
      const page = new TestPage()
      page.id = p.id
      page.name = p.name
      page.priceCents = BigInt(p.price_cents)
      page.category = c.rows[0].name
      page.createdAt = p.created_at
      page.attrs = new Map([['reviews', r.rows.length]])
      page.labels = new Set(['new', p.name])
      page.blob = Buffer.from([1, 2, 3, p.id % 256])
      page.reviews = r.rows.map((x) =>
        Object.assign(new TestReview(), { rating: x.rating, at: x.created_at }),
      )
      return page
    },
  }
}
