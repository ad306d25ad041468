/**
 * The shop through the cache (issue 4, "in the shop"): X-Cache on every catalog read, precise invalidation
 * by admin writes, reviews and finished thumbnail jobs, the product page's ETag, and "not found" cached
 * without hiding a product created later. Real PostgreSQL and Redis, requests through app.inject.
 */
import type { LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { thumbnailsJob } from '../../apps/shop/images.js'
import type { JobContext } from '../../src/jobs/define.js'
import type { TestApp } from '../support/app.js'
import { admin, type Client, createShop, customer } from './helpers.js'

let shop: TestApp
let boss: Client
/** a and c share a small category (so c's related products show a); b is in another category. */
let a: number
let b: number
let c: number

async function get(url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return shop.app.inject({ method: 'GET', url, headers })
}

/** The X-Cache values of GETting these URLs, one after the other. */
async function xcache(...urls: string[]): Promise<string[]> {
  const out: string[] = []
  for (const url of urls) {
    const res = await get(url)
    expect(res.statusCode, res.body).toBe(200)
    out.push(String(res.headers['x-cache']))
  }
  return out
}

/** After a write (its NOTIFY echo bumps nothing again): reading `url` settles to HIT within two reads. */
async function settlesToHit(url: string): Promise<void> {
  const [, second] = await xcache(url, url)
  expect(second).toBe('HIT')
}

beforeAll(async () => {
  shop = await createShop({ products: 30, reviews: 60 })
  boss = await admin(shop.app)
  const { rows } = await shop.deps.db.query<{ category_id: number; ids: number[] }>(
    `SELECT category_id, array_agg(id ORDER BY id)::int[] AS ids FROM products
      GROUP BY category_id HAVING count(*) BETWEEN 2 AND 6 ORDER BY category_id LIMIT 1`,
  )
  ;[a, c] = rows[0].ids
  const other = await shop.deps.db.query<{ id: number }>(
    'SELECT id FROM products WHERE category_id <> $1 ORDER BY id LIMIT 1',
    [rows[0].category_id],
  )
  b = other.rows[0].id
})
afterAll(async () => {
  await shop?.close()
})

describe('catalog reads through the query cache', () => {
  it('categories, listings and searches answer MISS then HIT; a product write makes them MISS again', async () => {
    const word = (await get(`/api/products/${a}`)).json().name.split(' ')[0] as string
    const urls = [
      '/api/categories',
      '/api/products?sort=price&limit=5',
      `/api/products?q=${encodeURIComponent(word)}`,
      `/api/products?category=${(await get(`/api/products/${a}`)).json().category.slug}&sort=name`,
    ]
    expect(await xcache(...urls)).toEqual(['MISS', 'MISS', 'MISS', 'MISS'])
    expect(await xcache(...urls)).toEqual(['HIT', 'HIT', 'HIT', 'HIT'])
    const search = (await get(urls[2])).json()
    expect(search.items.length).toBeGreaterThan(0)
    for (const p of search.items)
      expect(`${p.name} ${p.description}`.toLowerCase()).toContain(word.toLowerCase())

    const res = await boss.request('PATCH', `/api/products/${b}`, { priceCents: 0, name: `${word} Bargain` })
    expect(res.statusCode, res.body).toBe(200)
    expect(await xcache(...urls)).toEqual(['MISS', 'MISS', 'MISS', 'MISS'])
    for (const url of urls) await settlesToHit(url)
    const listing = (await get(urls[1])).json()
    expect(listing.items[0]).toMatchObject({ id: b, priceCents: 0, version: res.json().version })
    expect((await get(urls[2])).json().items.map((p: { id: number }) => p.id)).toContain(b)
  })

  it('bad listing requests are still 400 through the cache', async () => {
    const res = await get('/api/products?category=no-such-category')
    expect(res.statusCode).toBe(400)
    expect(res.json().error.code).toBe('FLEET_E_SHOP_UNKNOWN_CATEGORY')
    const bad = await get('/api/products?cursor=bogus')
    expect(bad.statusCode).toBe(400)
  })
})

describe('the product page from the object cache', () => {
  it('an admin write invalidates its own page and the related lists that show it, nothing else', async () => {
    const pa = `/api/products/${a}`
    const pb = `/api/products/${b}`
    const pc = `/api/products/${c}`
    await xcache(pa, pb, pc)
    expect(await xcache(pa, pb, pc)).toEqual(['HIT', 'HIT', 'HIT'])
    const before = await get(pa)
    // The page's ETag works as If-Match: its version part is the product's version.
    const res = await boss.request(
      'PATCH',
      pa,
      { priceCents: 4242, description: 'changed' },
      { 'if-match': String(before.headers.etag) },
    )
    expect(res.statusCode, res.body).toBe(200)
    const version = res.json().version as number
    expect(version).toBe(before.json().version + 1)

    const after = await get(pa)
    expect(after.headers['x-cache']).toBe('MISS')
    expect(after.json()).toMatchObject({ id: a, version, priceCents: 4242, description: 'changed' })
    expect(after.headers.etag).toMatch(new RegExp(`^"${version}-`))
    expect(await xcache(pb)).toEqual(['HIT'])
    // c's related products include a (same small category): that part was invalidated, with the new price.
    const related = await get(pc)
    expect(related.headers['x-cache']).toBe('MISS')
    expect(related.json().related.find((p: { id: number }) => p.id === a)).toMatchObject({
      priceCents: 4242,
      version,
    })
    await settlesToHit(pa)
    await settlesToHit(pc)
    expect(await xcache(pb)).toEqual(['HIT'])
  })

  it('a new review shows on its page at once, changes the ETag, and leaves other pages cached', async () => {
    const pa = `/api/products/${a}`
    const pb = `/api/products/${b}`
    await xcache(pa, pb)
    const before = await get(pa)
    expect(before.headers['x-cache']).toBe('HIT')
    const etag = String(before.headers.etag)
    const notModified = await get(pa, { 'if-none-match': etag })
    expect(notModified.statusCode).toBe(304)
    expect(notModified.body).toBe('')
    expect(notModified.headers['x-cache']).toBe('HIT')

    const { client } = await customer(shop.app)
    const review = await client.request('POST', `${pa}/reviews`, { rating: 1, body: 'broke on day two' })
    expect(review.statusCode, review.body).toBe(201)

    const after = await get(pa, { 'if-none-match': etag })
    expect(after.statusCode).toBe(200)
    expect(after.headers['x-cache']).toBe('MISS')
    expect(after.headers.etag).not.toBe(etag)
    const page = after.json()
    expect(page.version).toBe(before.json().version) // the product row did not change; the page did
    expect(page.rating.count).toBe(before.json().rating.count + 1)
    expect(page.reviews[0]).toMatchObject({ id: review.json().id, body: 'broke on day two', rating: 1 })
    expect(await xcache(pb)).toEqual(['HIT'])
    await settlesToHit(pa)
    expect(await xcache(pb)).toEqual(['HIT'])
  })

  it('a missing product is 404 (cached), and a product created later with that id appears', async () => {
    const { rows } = await shop.deps.db.query<{ next: string }>(
      `SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END AS next
         FROM ${shop.deps.config.dbSchema}.products_id_seq`,
    )
    const next = Number(rows[0].next)
    const url = `/api/products/${next}`
    const first = await get(url)
    expect(first.statusCode).toBe(404)
    expect(first.json().error).toMatchObject({
      code: 'FLEET_E_SHOP_PRODUCT_NOT_FOUND',
      details: { productId: next },
    })
    expect(first.headers['x-cache']).toBe('MISS')
    const second = await get(url)
    expect(second.statusCode).toBe(404)
    expect(second.headers['x-cache']).toBe('HIT')

    const created = await boss.request('POST', '/api/products', {
      name: 'Late Arrival',
      priceCents: 1,
      categoryId: 1,
    })
    expect(created.statusCode, created.body).toBe(201)
    expect(created.json().id).toBe(next)
    const found = await get(url)
    expect(found.statusCode).toBe(200)
    expect(found.headers['x-cache']).toBe('MISS')
    expect(found.json()).toMatchObject({ id: next, name: 'Late Arrival', images: {}, rating: { count: 0 } })
    await settlesToHit(url)

    const deleted = await boss.request('DELETE', url)
    expect(deleted.statusCode, deleted.body).toBe(200)
    const gone = await get(url)
    expect(gone.statusCode).toBe(404)
    expect(gone.headers['x-cache']).toBe('MISS')
  })

  it("lists the thumbnails once the thumbnails job's commit wrote them (through deps.db)", async () => {
    const pa = `/api/products/${a}`
    const pb = `/api/products/${b}`
    await xcache(pa, pb)
    const before = await get(pa)
    expect(before.headers['x-cache']).toBe('HIT')
    expect(before.json().images).toEqual({})
    await shop.deps.db.query(
      `INSERT INTO product_images (product_id, format, width, height, bytes, original)
       VALUES ($1, 'png', 2, 2, 1, '\\x00')`,
      [a],
    )
    // The job's own commit, in a transaction of the database layer, as the worker runs it.
    const ctx = { payload: { productId: a, version: 1 } } as unknown as JobContext<{
      productId: number
      version: number
    }>
    const rendered = [64, 256, 1024].map((size) => ({
      size,
      width: 2,
      height: 2,
      data: Buffer.from(`t${size}`),
    }))
    const commit = thumbnailsJob.commit
    if (!commit) throw new Error('the thumbnails job has no commit step')
    const result = await shop.deps.db.transaction((tx) => commit(tx, rendered, ctx))
    expect(result).toMatchObject({ superseded: false })

    const after = await get(pa)
    expect(after.headers['x-cache']).toBe('MISS')
    expect(after.headers.etag).not.toBe(before.headers.etag)
    const images = after.json().images as Record<string, string>
    expect(Object.keys(images).sort()).toEqual(['1024', '256', '64'])
    expect(images['256']).toMatch(new RegExp(`^/api/products/${a}/image/256\\?v=[\\w-]+$`))
    const thumb = await get(images['64'])
    expect(thumb.statusCode).toBe(200)
    expect(thumb.body).toBe('t64')
    expect(await xcache(pb)).toEqual(['HIT'])
    await settlesToHit(pa)
  })
})
