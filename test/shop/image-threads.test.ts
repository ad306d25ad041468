/** The thumbnail job renders with FLEET_IMAGE_THREADS libvips threads (1 by default: one core per worker). */
import os from 'node:os'
import sharp from 'sharp'
import { afterEach, describe, expect, it } from 'vitest'
import { thumbnailsJob } from '../../apps/shop/images.js'
import shopApp from '../../apps/shop/index.js'
import { Database } from '../../src/db/database.js'
import type { JobContext } from '../../src/jobs/define.js'
import { createTestContext, type TestContext } from '../support/context.js'

let ctx: TestContext | undefined
const initial = sharp.concurrency()
afterEach(async () => {
  await ctx?.cleanup()
  ctx = undefined
  sharp.concurrency(initial) // as it was, for other tests in this process
})

async function render(threads: string): Promise<{ sizes: number[]; concurrency: number }> {
  ctx = await createTestContext({ env: { FLEET_IMAGE_THREADS: threads }, app: shopApp })
  const png = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#36c' } })
    .png()
    .toBuffer()
  await ctx.pool.query(`INSERT INTO categories (slug, name) VALUES ('c', 'C')`)
  await ctx.pool.query(
    `INSERT INTO products (slug, name, price_cents, category_id) VALUES ('p', 'P', 100, 1)`,
  )
  await ctx.pool.query(
    `INSERT INTO product_images (product_id, format, width, height, bytes, original) VALUES (1, 'png', 300, 200, $1, $2)`,
    [png.length, png],
  )
  const job = {
    id: 'shop.thumbnails-test',
    payload: { productId: 1, version: 1 },
    owner: 'system',
    attempt: 1,
    signal: new AbortController().signal,
    db: new Database(ctx.pool),
    config: ctx.config,
    logger: undefined as never,
    progress: async () => {},
    cpu: async () => {
      throw new Error('no cpu function')
    },
  } satisfies JobContext<{ productId: number; version: number }>
  const out = await thumbnailsJob.process(job)
  return { sizes: (out ?? []).map((r) => r.width), concurrency: sharp.concurrency() }
}

describe('FLEET_IMAGE_THREADS', () => {
  it('renders with one libvips thread by default', async () => {
    sharp.concurrency(5) // something else, so that a job that ignored the setting would show it
    const r = await render('1')
    expect(r.sizes).toEqual([64, 256, 300]) // never enlarged
    expect(r.concurrency).toBe(1)
  })
  it('0 gives libvips its default, one thread per core', async () => {
    sharp.concurrency(97) // not a default on any machine this runs on
    const r = await render('0')
    expect(r.concurrency).toBeGreaterThanOrEqual(1)
    expect(r.concurrency).not.toBe(97)
    expect(r.concurrency).toBe(sharp.concurrency(0))
    expect(r.concurrency).toBe(os.availableParallelism())
  })
})
