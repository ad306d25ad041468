/**
 * Product images, the shop's first heavy task. `PUT /api/products/:id/image` (admin) takes a JPEG, PNG or
 * WebP (checked by decoding its header with sharp, not by its name), stores the original in PostgreSQL
 * and starts a `shop.thumbnails` job; the job renders WebP thumbnails of 64, 256 and 1024 px (inside a
 * square, never enlarged). `GET /api/products/:id/image/:size` serves them with an ETag. A hostile file
 * (a decompression bomb past FLEET_IMAGE_MAX_PIXELS, a truncated or corrupt one) fails its job with a coded
 * error and marks the image failed; the worker goes on.
 */
import { createHash } from 'node:crypto'
import os from 'node:os'
import {
  type AppDeps,
  accepted,
  defineJob,
  FleetError,
  idempotencyKey,
  JobPermanentError,
  jobClient,
  requireAdmin,
} from '@fleet-stack/fleet'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { productImageUrls } from './catalog.js'
import { ProductNotFoundError } from './errors.js'
import { shopConfig } from './settings.js'

/** sharp (~20 MB of native code) is loaded on first use, not by every web server at start. */
async function loadSharp(): Promise<typeof import('sharp')> {
  return (await import('sharp')).default
}

export { productImageUrls }

export const THUMBNAIL_SIZES = [64, 256, 1024] as const
const FORMATS = new Set(['jpeg', 'png', 'webp'])

/** The upload is not a JPEG, PNG or WebP image (judged by its content). */
export class ImageFormatError extends FleetError {
  static override code = 'FLEET_E_SHOP_IMAGE_FORMAT'
  static override statusCode = 415
  constructor(found: string) {
    super(`the upload is ${found}; send a JPEG, PNG or WebP image`, { details: { found } })
  }
}

/** The product has no image (yet), or no thumbnail of that size. */
export class ImageNotFoundError extends FleetError {
  static override code = 'FLEET_E_SHOP_IMAGE_NOT_FOUND'
  static override statusCode = 404
  constructor(productId: number, size?: number) {
    super(
      size
        ? `product ${productId} has no ${size} px thumbnail (yet); GET /api/products/${productId}/image shows its state`
        : `product ${productId} has no image`,
      { details: { productId, ...(size ? { size } : {}) } },
    )
  }
}

interface Rendered {
  size: number
  width: number
  height: number
  data: Buffer
}

/** Renders the thumbnails of one image version and stores them, once. */
export const thumbnailsJob = defineJob({
  name: 'shop.thumbnails',
  payload: Type.Object({
    productId: Type.Integer({ minimum: 1 }),
    version: Type.Integer({ minimum: 1 }),
  }),
  concurrency: 1,
  attempts: 3,
  timeout: 60_000,
  process: async (ctx): Promise<Rendered[] | null> => {
    const { productId, version } = ctx.payload
    const { rows } = await ctx.db.query<{ original: Buffer; version: number }>(
      'SELECT original, version FROM product_images WHERE product_id = $1',
      [productId],
    )
    if (!rows[0] || rows[0].version !== version) return null // replaced by a newer upload meanwhile
    const sharp = await loadSharp()
    const settings = shopConfig(ctx.config)
    // Process-wide, the same value for every job. 0 is resolved here: sharp's concurrency(0) keeps the
    // current value, and its own default is 1 on glibc Linux without jemalloc, the number of cores elsewhere.
    sharp.concurrency(settings.imageThreads || os.availableParallelism())
    const out: Rendered[] = []
    for (const size of THUMBNAIL_SIZES) {
      ctx.signal.throwIfAborted()
      try {
        const { data, info } = await sharp(rows[0].original, {
          limitInputPixels: settings.imageMaxPixels,
          failOn: 'truncated',
        })
          .rotate()
          .resize(size, size, { fit: 'inside', withoutEnlargement: true })
          .webp({ quality: 80 })
          .toBuffer({ resolveWithObject: true })
        out.push({ size, width: info.width, height: info.height, data })
      } catch (err) {
        const message = (err as Error).message
        if (/pixel limit/i.test(message)) {
          throw new JobPermanentError(
            `the image has more than ${settings.imageMaxPixels} pixels (a decompression bomb?)`,
            'FLEET_E_SHOP_IMAGE_TOO_LARGE',
          )
        }
        throw new JobPermanentError(`the image cannot be decoded: ${message}`, 'FLEET_E_SHOP_IMAGE_CORRUPT')
      }
      await ctx.progress(Math.round((out.length / THUMBNAIL_SIZES.length) * 100))
    }
    return out
  },
  commit: async (tx, rendered, ctx) => {
    const { productId, version } = ctx.payload
    if (!rendered) return { productId, version, superseded: true, sizes: [] }
    const current = await tx.query(
      `UPDATE product_images SET state = 'ready', error = NULL WHERE product_id = $1 AND version = $2`,
      [productId, version],
    )
    if (current.rowCount === 0) return { productId, version, superseded: true, sizes: [] }
    for (const r of rendered) {
      const etag = createHash('sha256').update(r.data).digest('base64url').slice(0, 22)
      await tx.query(
        `INSERT INTO product_thumbnails (product_id, size, version, width, height, etag, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (product_id, size) DO UPDATE SET version = EXCLUDED.version, width = EXCLUDED.width,
           height = EXCLUDED.height, etag = EXCLUDED.etag, data = EXCLUDED.data, created_at = now()`,
        [productId, r.size, version, r.width, r.height, etag, r.data],
      )
    }
    return {
      productId,
      version,
      superseded: false,
      sizes: rendered.map((r) => ({
        size: r.size,
        width: r.width,
        height: r.height,
        bytes: r.data.length,
        url: `/api/products/${productId}/image/${r.size}`,
      })),
    }
  },
  failed: async (db, error, ctx) => {
    await db.query(
      `UPDATE product_images SET state = 'failed', error = $3 WHERE product_id = $1 AND version = $2`,
      [ctx.payload.productId, ctx.payload.version, JSON.stringify(error)],
    )
  },
})

const IdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) })
const SizeParams = Type.Object({
  id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  size: Type.Union(THUMBNAIL_SIZES.map((s) => Type.Literal(s))),
})

/** The image routes (upload, state, thumbnails). */
export async function productImageRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const jobs = jobClient(deps)
  const bodyLimit = shopConfig(deps.config).imageMaxBytes

  // The raw-body parser is scoped to this child context: it does not change how other routes parse.
  await app.register(async (scope) => {
    scope.addContentTypeParser(
      ['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream'],
      { parseAs: 'buffer', bodyLimit },
      (_request, body, done) => done(null, body),
    )
    scope.put<{ Params: { id: number }; Body: Buffer }>(
      '/api/products/:id/image',
      {
        bodyLimit,
        schema: { params: IdParams, tags: ['images'], summary: 'Upload a product image (admin)' },
      },
      async (request, reply) => {
        const admin = await requireAdmin(request)
        const id = request.params.id
        const body = request.body
        if (!Buffer.isBuffer(body) || body.length === 0) throw new ImageFormatError('empty')
        const sharp = await loadSharp()
        const meta = await sharp(body)
          .metadata()
          .catch(() => undefined)
        if (!meta?.format || !FORMATS.has(meta.format) || !meta.width || !meta.height) {
          throw new ImageFormatError(meta?.format ? `a ${meta.format} image` : 'not an image sharp can read')
        }
        const version = await deps.db
          .query<{ version: number }>(
            `INSERT INTO product_images (product_id, format, width, height, bytes, original)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (product_id) DO UPDATE SET version = product_images.version + 1,
               format = EXCLUDED.format, width = EXCLUDED.width, height = EXCLUDED.height,
               bytes = EXCLUDED.bytes, original = EXCLUDED.original, state = 'pending', error = NULL,
               job_id = NULL, uploaded_at = now()
             RETURNING version`,
            [id, meta.format, meta.width, meta.height, body.length, body],
          )
          .then(
            (r) => r.rows[0].version,
            (err: { code?: string }) => {
              throw err.code === '23503' ? new ProductNotFoundError(id) : err
            },
          )
        const view = await jobs.submit(thumbnailsJob, { productId: id, version }, `user:${admin.id}`, {
          idempotencyKey: idempotencyKey(request),
        })
        await deps.db.query('UPDATE product_images SET job_id = $3 WHERE product_id = $1 AND version = $2', [
          id,
          version,
          view.id,
        ])
        return accepted(reply, view)
      },
    )
  })

  app.get<{ Params: { id: number } }>(
    '/api/products/:id/image',
    { schema: { params: IdParams, tags: ['images'], summary: 'A product image: state and thumbnail URLs' } },
    async (request, reply) => {
      const id = request.params.id
      const { rows } = await deps.db.query<Record<string, unknown>>(
        `SELECT version, format, width, height, bytes, state, job_id AS "jobId", error, uploaded_at AS "uploadedAt"
           FROM product_images WHERE product_id = $1`,
        [id],
      )
      if (!rows[0]) throw new ImageNotFoundError(id)
      reply.header('cache-control', 'no-store')
      return { productId: id, ...rows[0], thumbnails: await productImageUrls(deps.db, id) }
    },
  )

  app.get<{ Params: { id: number; size: 64 | 256 | 1024 }; Querystring: { v?: string } }>(
    '/api/products/:id/image/:size',
    { schema: { params: SizeParams, tags: ['images'], summary: 'A WebP thumbnail (64, 256 or 1024 px)' } },
    async (request, reply) => {
      const { id, size } = request.params
      const { rows } = await deps.db.query<{ etag: string; data: Buffer }>(
        'SELECT etag, data FROM product_thumbnails WHERE product_id = $1 AND size = $2',
        [id, size],
      )
      if (!rows[0]) throw new ImageNotFoundError(id, size)
      const etag = `"${rows[0].etag}"`
      // A URL that names the current version (?v=<etag>, as the product page lists it) never changes.
      const immutable = request.query.v === rows[0].etag
      reply
        .header('etag', etag)
        .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'public, max-age=60')
        .header('content-type', 'image/webp')
        // Public thumbnails: another origin (a storefront, a CDN) may embed them, unlike the JSON API.
        .header('cross-origin-resource-policy', 'cross-origin')
      if (request.headers['if-none-match'] === etag) return reply.code(304).send()
      return reply.send(rows[0].data)
    },
  )
}
