/**
 * The shop's heavy tasks meet the cache, through a real `fleet worker` process: a finished thumbnails job
 * makes the product page list its image URLs, and a recommendations run assembles the product pages into the
 * object cache ahead of the first request (the warmer `fleet worker` installs).
 */
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import shopApp from '../../apps/shop/index.js'
import { seedCatalog } from '../../apps/shop/seed.js'
import { spawnWorker, type WorkerChild, waitFor } from '../jobs/support.js'
import { createAppTest, type TestApp } from '../support/app.js'
import { ADMIN, admin, type Client, shopWorkerEnv } from './helpers.js'

let shop: TestApp
let boss: Client
let worker: WorkerChild | undefined

beforeAll(async () => {
  shop = await createAppTest(shopApp, {
    env: { ...shopWorkerEnv, FLEET_ADMIN_EMAIL: ADMIN.email, FLEET_ADMIN_PASSWORD: ADMIN.password },
  })
  await seedCatalog(shop.deps.db, { products: 12, reviews: 60, users: 20 })
  boss = await admin(shop.app)
  // Started before any page is cached: a starting process replaces the cache's epoch (everything misses once).
  worker = await spawnWorker({ ...shop.env, FLEET_INSTANCE_ID: 'worker-shop-cache' })
}, 90_000)
afterAll(async () => {
  worker?.child.kill('SIGKILL')
  await worker?.exited
  await shop?.close()
})

/**
 * The job's final state as the API reports it: a job is `completed` there once the worker acknowledged it,
 * that is after its commit invalidated the cache (and after the recommendations job's warmer ran).
 */
async function jobEnded(id: string): Promise<string> {
  return waitFor(`job ${id} to end`, async () => {
    const { state } = (await boss.request('GET', `/api/jobs/${id}`)).json() as { state: string }
    return ['completed', 'failed', 'cancelled'].includes(state) ? state : undefined
  })
}

describe('jobs and the cached product page', () => {
  it('lists the thumbnail URLs once the thumbnails job finished', async () => {
    const url = '/api/products/1'
    await shop.app.inject({ method: 'GET', url })
    const before = await shop.app.inject({ method: 'GET', url })
    expect(before.headers['x-cache']).toBe('HIT')
    expect(before.json().images).toEqual({})
    const png = await sharp({ create: { width: 120, height: 80, channels: 3, background: '#884422' } })
      .png()
      .toBuffer()
    const res = await boss.request('PUT', '/api/products/1/image', png, { 'content-type': 'image/png' })
    expect(res.statusCode, res.body).toBe(202)
    expect(await jobEnded(res.json().id)).toBe('completed')
    const after = await shop.app.inject({ method: 'GET', url })
    expect(after.statusCode).toBe(200)
    const images = after.json().images as Record<string, string>
    expect(Object.keys(images).sort()).toEqual(['1024', '256', '64'])
    expect(after.headers.etag).not.toBe(before.headers.etag)
    const thumb = await shop.app.inject({ method: 'GET', url: images['256'] })
    expect(thumb.statusCode).toBe(200)
    expect(thumb.headers['content-type']).toBe('image/webp')
    expect(thumb.headers['cache-control']).toMatch(/immutable/)
  })

  it('a recommendations run warms the product pages: their first request is a HIT', async () => {
    const res = await boss.request('POST', '/api/admin/recommendations', {})
    expect(res.statusCode, res.body).toBe(202)
    expect(await jobEnded(res.json().id)).toBe('completed')
    // The warmer runs after the commit (best effort): wait for its log line.
    await waitFor('the pages to be warmed', async () =>
      worker?.lines.some((l) => l.includes('"product pages warmed"')) ? true : undefined,
    )
    const { rows } = await shop.deps.db.query<{ product_id: number }>(
      'SELECT DISTINCT product_id FROM product_recommendations WHERE product_id <> 1 ORDER BY product_id',
    )
    expect(rows.length).toBeGreaterThan(3)
    for (const { product_id: id } of rows) {
      const page = await shop.app.inject({ method: 'GET', url: `/api/products/${id}` })
      expect(page.statusCode).toBe(200)
      expect([id, page.headers['x-cache']]).toEqual([id, 'HIT'])
    }
  })
})
