import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import shopApp from '../../apps/shop/index.js'
import { catalogIsEmpty, resetCatalog, seedCatalog } from '../../apps/shop/seed.js'
import { Prng, slugify } from '../../apps/shop/seed-data.js'
import { Database } from '../../src/db/database.js'
import { createTestContext, type TestContext } from '../support/context.js'

/** An md5 over every row of the catalog tables, in id order: equal digests mean identical rows. */
async function digest(db: Database): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const table of ['categories', 'users', 'products', 'reviews']) {
    const { rows } = await db.query<{ md5: string }>(
      `SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) AS md5 FROM ${table} t`,
    )
    out[table] = rows[0].md5
  }
  return out
}

async function count(db: Database, table: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)
  return rows[0].n
}

let a: TestContext
let b: TestContext
let dbA: Database
let dbB: Database
beforeAll(async () => {
  ;[a, b] = await Promise.all([createTestContext({ app: shopApp }), createTestContext({ app: shopApp })])
  dbA = new Database(a.pool)
  dbB = new Database(b.pool)
})
afterAll(async () => {
  await Promise.all([a?.cleanup(), b?.cleanup()])
})

describe('the PRNG and helpers', () => {
  it('repeat the same sequence for the same seed', () => {
    const x = new Prng(7)
    const y = new Prng(7)
    const z = new Prng(8)
    const xs = Array.from({ length: 100 }, () => x.next())
    expect(Array.from({ length: 100 }, () => y.next())).toEqual(xs)
    expect(Array.from({ length: 100 }, () => z.next())).not.toEqual(xs)
    expect(xs.every((v) => v >= 0 && v < 1)).toBe(true)
    expect(slugify('Crème Brûlée -- 2 Go!')).toBe('creme-brulee-2-go')
  })
})

describe('seedCatalog', () => {
  it('gives identical rows, ids and timestamps included, in two schemas', async () => {
    const options = { products: 2_000, reviews: 10_000 }
    const [ra, rb] = await Promise.all([seedCatalog(dbA, options), seedCatalog(dbB, options)])
    expect(ra).toMatchObject({ categories: 20, products: 2_000, reviews: 10_000, users: 1_000 })
    expect(rb).toMatchObject({ categories: 20, products: 2_000, reviews: 10_000, users: 1_000 })
    const [da, db] = [await digest(dbA), await digest(dbB)]
    expect(da).toEqual(db)
    expect(Object.values(da).every((v) => /^[0-9a-f]{32}$/.test(v))).toBe(true)
    await Promise.all([resetCatalog(dbA), resetCatalog(dbB)])
  })

  it('loads 20 categories, 10,000 products and 50,000 reviews, reporting progress', async () => {
    expect(await catalogIsEmpty(dbA)).toBe(true)
    const progress: [number, number, string][] = []
    const r = await seedCatalog(dbA, {
      products: 10_000,
      reviews: 50_000,
      onProgress: (d, t, p) => progress.push([d, t, p]),
    })
    expect(r).toMatchObject({ categories: 20, products: 10_000, reviews: 50_000, users: 1_000 })
    expect(r.ms).toBeGreaterThan(0)
    expect(await count(dbA, 'categories')).toBe(20)
    expect(await count(dbA, 'products')).toBe(10_000)
    expect(await count(dbA, 'reviews')).toBe(50_000)
    expect(await count(dbA, 'users')).toBe(1_000)
    expect(await catalogIsEmpty(dbA)).toBe(false)

    // Progress: monotonic, ends at the total, names each phase.
    const total = 20 + 1_000 + 10_000 + 50_000
    expect(progress.at(-1)).toEqual([total, total, 'reviews'])
    expect(progress.map(([d]) => d)).toEqual([...progress.map(([d]) => d)].sort((x, y) => x - y))
    expect(new Set(progress.map(([, , p]) => p))).toEqual(
      new Set(['categories', 'users', 'products', 'reviews']),
    )

    // Every category is used; every rating is 1-5 (one review per product and user is a unique index).
    const { rows } = await dbA.query<{ cats: number; bad: number }>(
      `SELECT count(DISTINCT category_id)::int AS cats,
              (SELECT count(*)::int FROM reviews WHERE rating NOT BETWEEN 1 AND 5) AS bad FROM products`,
    )
    expect(rows[0]).toEqual({ cats: 20, bad: 0 })
  })

  it('refuses a non-empty catalog, and a reset makes it seedable again with the same rows', async () => {
    await expect(seedCatalog(dbA, { products: 10, reviews: 0 })).rejects.toMatchObject({
      code: 'FLEET_E_SHOP_CATALOG_NOT_EMPTY',
    })
    await dbA.query(`INSERT INTO users (email, password_hash) VALUES ('real@example.test', 'x')`)
    await resetCatalog(dbA)
    expect(await catalogIsEmpty(dbA)).toBe(true)
    expect(await count(dbA, 'users')).toBe(1)
    await resetCatalog(dbB)
    await dbB.query(`INSERT INTO users (email, password_hash) VALUES ('real@example.test', 'x')`)
    // Two concurrent seeds into one schema: one loads, the other finds the catalog there.
    const results = await Promise.allSettled([
      seedCatalog(dbA, { products: 300, reviews: 900, seed: 5 }),
      seedCatalog(dbA, { products: 300, reviews: 900, seed: 5 }),
    ])
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    await seedCatalog(dbB, { products: 300, reviews: 900, seed: 5 })
    const [da, db] = [await digest(dbA), await digest(dbB)]
    expect(da.products).toBe(db.products)
    expect(da.categories).toBe(db.categories)
    expect(await count(dbA, 'reviews')).toBe(900)
    // Another seed value gives another catalog.
    await resetCatalog(dbB)
    await seedCatalog(dbB, { products: 300, reviews: 900, seed: 6 })
    expect((await digest(dbB)).products).not.toBe(da.products)
  })
})
