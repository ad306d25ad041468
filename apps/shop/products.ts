/**
 * Admin writes to the catalog. Every change increments the product's `version` and sets `updated_at` in
 * the same statement; a caller may pass the version it last read, and the write then applies only to that
 * version (optimistic concurrency, If-Match), else VersionMismatchError (409).
 */
import { randomBytes } from 'node:crypto'
import type { Database } from '@fleet-stack/fleet'
import { PRODUCT_COLUMNS, type Product, type ProductRow, toProduct } from './catalog.js'
import { ProductNotFoundError, SlugTakenError, UnknownCategoryError, VersionMismatchError } from './errors.js'
import { slugify } from './seed-data.js'

export interface ProductInput {
  slug?: string
  name: string
  description?: string
  priceCents: number
  currency?: string
  stock?: number
  categoryId: number
}

export type ProductPatch = Partial<ProductInput>

const COLUMNS: Record<keyof ProductInput, string> = {
  slug: 'slug',
  name: 'name',
  description: 'description',
  priceCents: 'price_cents',
  currency: 'currency',
  stock: 'stock',
  categoryId: 'category_id',
}

/** Turns constraint violations into the errors a client can act on. */
function mapWriteError(err: unknown, input: ProductPatch): unknown {
  const e = err as { code?: string; constraint?: string }
  if (e.code === '23505' && e.constraint === 'products_slug_key') return new SlugTakenError(input.slug ?? '')
  if (e.code === '23503' && e.constraint === 'products_category_id_fkey')
    return new UnknownCategoryError(input.categoryId ?? 0, 'categoryId')
  return err
}

/**
 * Creates a product at version 1. Without a slug, the slugified name is used, with a short random suffix
 * when another product has it already; a slug given explicitly must be free (else SlugTakenError).
 */
export async function createProduct(db: Database, input: ProductInput): Promise<Product> {
  if (input.slug !== undefined) return insertProduct(db, input)
  const base = slugify(input.name) || 'product'
  try {
    return await insertProduct(db, { ...input, slug: base })
  } catch (err) {
    if (!(err instanceof SlugTakenError)) throw err
    return insertProduct(db, { ...input, slug: `${base}-${randomBytes(3).toString('hex')}` })
  }
}

async function insertProduct(db: Database, values: ProductInput): Promise<Product> {
  const keys = (Object.keys(values) as (keyof ProductInput)[]).filter((k) => values[k] !== undefined)
  try {
    const { rows } = await db.query<ProductRow>(
      `INSERT INTO products AS p (${keys.map((k) => COLUMNS[k]).join(', ')})
       VALUES (${keys.map((_, i) => `$${i + 1}`).join(', ')})
       RETURNING ${PRODUCT_COLUMNS}`,
      keys.map((k) => values[k]),
    )
    return toProduct(rows[0])
  } catch (err) {
    throw mapWriteError(err, values)
  }
}

async function explainMiss(db: Database, id: number, expected: number | undefined): Promise<never> {
  const { rows } = await db.query<{ version: number }>('SELECT version FROM products WHERE id = $1', [id])
  if (rows.length === 0 || expected === undefined) throw new ProductNotFoundError(id)
  throw new VersionMismatchError(id, expected, rows[0].version)
}

/** Applies `patch` and increments the version; 404 when missing, 409 on a version mismatch. */
export async function updateProduct(
  db: Database,
  id: number,
  patch: ProductPatch,
  expectedVersion?: number,
): Promise<Product> {
  const keys = (Object.keys(patch) as (keyof ProductInput)[]).filter((k) => patch[k] !== undefined)
  const params: unknown[] = [id, ...keys.map((k) => patch[k])]
  const sets = keys.map((k, i) => `${COLUMNS[k]} = $${i + 2}`)
  let versionCheck = ''
  if (expectedVersion !== undefined) {
    params.push(expectedVersion)
    versionCheck = ` AND version = $${params.length}`
  }
  let rows: ProductRow[]
  try {
    ;({ rows } = await db.query<ProductRow>(
      `UPDATE products AS p SET ${[...sets, 'version = version + 1', 'updated_at = now()'].join(', ')}
       WHERE id = $1${versionCheck}
       RETURNING ${PRODUCT_COLUMNS}`,
      params,
    ))
  } catch (err) {
    throw mapWriteError(err, patch)
  }
  if (rows.length === 0) return explainMiss(db, id, expectedVersion)
  return toProduct(rows[0])
}

/** Deletes a product (and its reviews); returns the version the deletion counts as (last + 1). */
export async function deleteProduct(
  db: Database,
  id: number,
  expectedVersion?: number,
): Promise<{ id: number; version: number }> {
  const params: unknown[] = [id]
  if (expectedVersion !== undefined) params.push(expectedVersion)
  const { rows } = await db.query<{ id: number; version: number }>(
    `DELETE FROM products WHERE id = $1${expectedVersion !== undefined ? ' AND version = $2' : ''}
     RETURNING id, version + 1 AS version`,
    params,
  )
  if (rows.length === 0) return explainMiss(db, id, expectedVersion)
  return rows[0]
}
