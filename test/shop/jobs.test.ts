/**
 * The shop's heavy tasks through a real worker process: product images (upload checks, thumbnails with
 * ETag, hostile files failing their job cleanly) and recommendations (checked against a brute-force count
 * on a small catalog).
 */
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { productImageRoutes } from '../../apps/shop/images.js'
import shopApp from '../../apps/shop/index.js'
import { recommendationRoutes } from '../../apps/shop/recommendations.js'
import { coReviews } from '../../apps/shop/recommendations-cpu.js'
import { jobRoutes } from '../../src/web/jobs-api.js'
import { loginCookie, readSse, spawnWorker, type WorkerChild, waitFor } from '../jobs/support.js'
import { createTestApp, type TestApp } from '../support/app.js'
import { isolatedEnv } from '../support/context.js'
import { shopWorkerEnv } from './helpers.js'

const PRODUCTS = 12
const USERS = 15

/** A small deterministic catalog: products, users, and reviews drawn by a seeded generator. */
async function seed(app: TestApp): Promise<void> {
  const db = app.deps.db
  await db.query(`INSERT INTO categories (slug, name) VALUES ('c', 'C')`)
  for (let p = 1; p <= PRODUCTS; p++) {
    await db.query(`INSERT INTO products (slug, name, price_cents, category_id) VALUES ($1, $1, 100, 1)`, [
      `p${p}`,
    ])
  }
  for (let u = 1; u <= USERS; u++) {
    await db.query(`INSERT INTO users (email, password_hash) VALUES ($1, 'x')`, [`u${u}@example.com`])
  }
  let s = 7
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31
    return s / 2 ** 31
  }
  for (let u = 1; u <= USERS; u++) {
    const n = 1 + Math.floor(rand() * 6)
    for (let k = 0; k < n; k++) {
      const p = 1 + Math.floor(rand() * PRODUCTS)
      await db.query(
        'INSERT INTO reviews (product_id, user_id, rating) VALUES ($1, $2, 4) ON CONFLICT DO NOTHING',
        [p, u],
      )
    }
  }
}

describe('the shop heavy tasks', () => {
  let web: TestApp
  let url: string
  let worker: WorkerChild | undefined
  let admin: string
  let customer: string
  const env = isolatedEnv({
    ...shopWorkerEnv,
    FLEET_IMAGE_MAX_PIXELS: '1000000',
    FLEET_IMAGE_MAX_BYTES: '300kb',
  })

  beforeAll(async () => {
    web = await createTestApp([jobRoutes, productImageRoutes, recommendationRoutes], { env, app: shopApp })
    url = await web.app.listen({ port: 0, host: '127.0.0.1' })
    await seed(web)
    admin = await loginCookie(web.deps.redis, web.deps.config, { id: 1, role: 'admin' })
    customer = await loginCookie(web.deps.redis, web.deps.config, { id: 2 })
    worker = await spawnWorker({ ...web.env, FLEET_INSTANCE_ID: 'worker-shop' })
  }, 90_000)

  afterAll(async () => {
    worker?.child.kill('SIGKILL')
    await web?.close()
  })

  const upload = (productId: number, body: Buffer, type: string, cookie = admin) =>
    fetch(`${url}/api/products/${productId}/image`, {
      method: 'PUT',
      headers: { cookie, 'content-type': type },
      body,
    })
  const final = (id: string) =>
    waitFor(`${id} to end`, async () => {
      const v = (await (await fetch(`${url}/api/jobs/${id}`, { headers: { cookie: admin } })).json()) as {
        state: string
      } & Record<string, unknown>
      return ['completed', 'failed', 'cancelled'].includes(v.state) ? v : undefined
    })

  it('renders WebP thumbnails of an uploaded image and serves them with ETag and Cache-Control', async () => {
    const png = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#336699' } })
      .png()
      .toBuffer()
    // Only admins upload, and only images (by content: a PNG sent as image/jpeg is still a PNG).
    expect((await upload(1, png, 'image/png', customer)).status).toBe(403)
    const notImage = await upload(1, Buffer.from('GIF89a this is not really an image'), 'image/png')
    expect(notImage.status).toBe(415)
    expect(((await notImage.json()) as { error: { code: string } }).error.code).toBe(
      'FLEET_E_SHOP_IMAGE_FORMAT',
    )
    expect((await upload(999, png, 'image/png')).status).toBe(404)
    expect((await upload(1, Buffer.alloc(400 * 1024, 1), 'image/png')).status).toBe(413)

    const res = await upload(1, png, 'image/jpeg')
    expect(res.status).toBe(202)
    const { id } = (await res.json()) as { id: string }
    expect(res.headers.get('location')).toBe(`/api/jobs/${id}`)
    const done = await final(id)
    expect(done).toMatchObject({
      state: 'completed',
      result: { productId: 1, version: 1, superseded: false },
    })

    const thumb = await fetch(`${url}/api/products/1/image/64`)
    expect(thumb.status).toBe(200)
    expect(thumb.headers.get('content-type')).toBe('image/webp')
    expect(thumb.headers.get('cache-control')).toMatch(/max-age=/)
    const etag = thumb.headers.get('etag')!
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 64, 43])
    expect(
      (await fetch(`${url}/api/products/1/image/64`, { headers: { 'if-none-match': etag } })).status,
    ).toBe(304)
    const big = await sharp(
      Buffer.from(await (await fetch(`${url}/api/products/1/image/1024`)).arrayBuffer()),
    ).metadata()
    expect([big.width, big.height]).toEqual([300, 200]) // never enlarged
    expect((await fetch(`${url}/api/products/1/image/100`)).status).toBe(400)

    const info = (await (await fetch(`${url}/api/products/1/image`)).json()) as {
      state: string
      thumbnails: Record<string, string>
    }
    expect(info.state).toBe('ready')
    expect(Object.keys(info.thumbnails)).toEqual(['64', '256', '1024'])
    const versioned = await fetch(`${url}${info.thumbnails['256']}`)
    expect(versioned.headers.get('cache-control')).toContain('immutable')
  })

  it('fails the job of a decompression bomb or a truncated file with a clear error; the worker goes on', async () => {
    // 1500 x 1500 pixels in a few kB: past the 1 MP limit of this test.
    const bomb = await sharp({ create: { width: 1500, height: 1500, channels: 3, background: '#000' } })
      .png({ compressionLevel: 9 })
      .toBuffer()
    const noise = Buffer.alloc(200 * 200 * 3)
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919) % 251
    const jpeg = await sharp(noise, { raw: { width: 200, height: 200, channels: 3 } })
      .jpeg()
      .toBuffer()
    const truncated = jpeg.subarray(0, Math.floor(jpeg.length / 2))

    const bombRes = await upload(2, bomb, 'image/png')
    expect(bombRes.status, await bombRes.clone().text()).toBe(202)
    const b = (await bombRes.json()) as { id: string }
    const truncRes = await upload(3, truncated, 'image/jpeg')
    expect(truncRes.status, await truncRes.clone().text()).toBe(202)
    const t = (await truncRes.json()) as { id: string }
    expect(await final(b.id)).toMatchObject({
      state: 'failed',
      attempts: 1,
      error: { code: 'FLEET_E_SHOP_IMAGE_TOO_LARGE' },
    })
    expect(await final(t.id)).toMatchObject({
      state: 'failed',
      attempts: 1,
      error: { code: 'FLEET_E_SHOP_IMAGE_CORRUPT' },
    })
    const info = (await (await fetch(`${url}/api/products/2/image`)).json()) as {
      state: string
      error: { code: string }
    }
    expect(info).toMatchObject({ state: 'failed', error: { code: 'FLEET_E_SHOP_IMAGE_TOO_LARGE' } })
    expect((await fetch(`${url}/api/products/2/image/64`)).status).toBe(404)

    expect((await fetch(`${worker!.url}/healthz`)).status).toBe(200)
    const ok = (await (await upload(3, jpeg, 'image/jpeg')).json()) as { id: string }
    expect(await final(ok.id)).toMatchObject({ state: 'completed', result: { version: 2 } })
  })

  it('computes recommendations on a worker thread, with progress, equal to a brute-force count', async () => {
    expect(
      (await fetch(`${url}/api/admin/recommendations`, { method: 'POST', headers: { cookie: customer } }))
        .status,
    ).toBe(403)
    const res = await fetch(`${url}/api/admin/recommendations`, {
      method: 'POST',
      headers: { cookie: admin, 'content-type': 'application/json' },
      body: JSON.stringify({ perProduct: 3 }),
    })
    expect(res.status).toBe(202)
    const { id } = (await res.json()) as { id: string }
    const sse = await readSse(`${url}/api/jobs/${id}/events`, { cookie: admin })
    expect(sse.events.at(-1), JSON.stringify(sse.events.at(-1))).toMatchObject({ event: 'completed' })
    expect(sse.events.some((e) => e.event === 'progress')).toBe(true)

    // Brute force: every ordered pair of products, counting the distinct users who reviewed both.
    const { rows } = await web.deps.db.query<{ a: number; b: number; n: number }>(
      `SELECT a.product_id AS a, b.product_id AS b, count(DISTINCT a.user_id)::int AS n
         FROM reviews a JOIN reviews b ON a.user_id = b.user_id AND a.product_id <> b.product_id
        GROUP BY 1, 2`,
    )
    const expected: string[] = []
    for (let p = 1; p <= PRODUCTS; p++) {
      rows
        .filter((r) => r.a === p)
        .sort((x, y) => y.n - x.n || x.b - y.b)
        .slice(0, 3)
        .forEach((r, i) => {
          expected.push(`${p}:${i + 1}:${r.b}:${r.n}`)
        })
    }
    const got = await web.deps.db.query<{
      product_id: number
      rank: number
      recommended_id: number
      shared_users: number
    }>(
      'SELECT product_id, rank, recommended_id, shared_users FROM product_recommendations ORDER BY product_id, rank',
    )
    expect(got.rows.map((r) => `${r.product_id}:${r.rank}:${r.recommended_id}:${r.shared_users}`)).toEqual(
      expected,
    )
    expect(expected.length).toBeGreaterThan(PRODUCTS) // the catalog is dense enough to test ranking

    const top = (await (await fetch(`${url}/api/products/1/recommendations`)).json()) as {
      items: { id: number }[]
    }
    expect(top.items.map((i) => i.id)).toEqual(
      got.rows.filter((r) => r.product_id === 1).map((r) => r.recommended_id),
    )
  })

  it('counts co-reviews like the definition says (the thread function alone)', () => {
    const r = coReviews({
      users: new Float64Array([1, 1, 1, 2, 2, 3]),
      products: new Float64Array([10, 20, 30, 10, 20, 30]),
      perProduct: 2,
    })
    expect(r.products).toBe(3)
    const rows = r.product.map((p, i) => [p, r.rank[i], r.recommended[i], r.shared[i]])
    expect(rows).toEqual([
      [10, 1, 20, 2],
      [10, 2, 30, 1],
      [20, 1, 10, 2],
      [20, 2, 30, 1],
      [30, 1, 10, 1],
      [30, 2, 20, 1],
    ])
  })
})
