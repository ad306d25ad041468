/**
 * The hand-written cache-aside peer of bench/stack.ts (the peer): a bare Fastify app, no logger, no
 * sessions, one route `GET /api/products/:id`. It asks Redis for the page's JSON (`GET <prefix>product:<id>`);
 * on a miss it runs the shop's SQL (apps/shop/catalog.ts getProductPage: the product, then its category,
 * rating, five latest reviews, five related products and thumbnail URLs side by side), builds the body the
 * shop answers with (the page fields plus `related`), stores it (`SET key body EX <ttl>`) and sends the
 * stored string as application/json. `PUT /api/products/:id {"priceCents": n}` changes a product the way a
 * naive app does: an UPDATE in PostgreSQL that leaves Redis alone (the cached page stays stale until its TTL).
 *
 * Run as a process: `node --import tsx bench/lib/peer.ts`, configured by its environment: PEER_PORT,
 * DATABASE_URL, PEER_DB_SCHEMA (the seeded schema), CACHE_REDIS_URL, PEER_PREFIX (`peer:`), PEER_CACHE
 * (`false`: every GET runs the SQL), PEER_TTL (60 s), PEER_POOL_MAX (10, as FLEET_DB_POOL_MAX).
 */
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import pg from 'pg'

/** The shop's Product columns (apps/shop/catalog.ts PRODUCT_COLUMNS). */
const COLUMNS = `p.id, p.slug, p.name, p.description, p.price_cents, p.currency, p.stock,
  p.category_id, p.created_at, p.updated_at, p.version`

interface ProductRow {
  id: number
  slug: string
  name: string
  description: string
  price_cents: number
  currency: string
  stock: number
  category_id: number
  created_at: Date
  updated_at: Date
  version: number
}

function toProduct(r: ProductRow) {
  return {
    id: r.id,
    slug: r.slug,
    name: r.name,
    description: r.description,
    priceCents: r.price_cents,
    currency: r.currency,
    stock: r.stock,
    categoryId: r.category_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    version: r.version,
  }
}

const env = process.env
const port = Number(env.PEER_PORT)
const prefix = env.PEER_PREFIX ?? 'peer:'
const cached = env.PEER_CACHE !== 'false'
const ttl = Number(env.PEER_TTL ?? 60)
const schema = env.PEER_DB_SCHEMA ?? 'public'
if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`PEER_DB_SCHEMA: not an identifier: ${schema}`)

// As Fleet's pool does: BIGINT ids come back as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v))
const pool = new pg.Pool({
  connectionString: env.DATABASE_URL,
  max: Number(env.PEER_POOL_MAX ?? 10),
  idleTimeoutMillis: 30_000,
  application_name: 'bench-peer',
  options: `-c search_path=${schema},public`,
})
const redis = new Redis(env.CACHE_REDIS_URL ?? 'redis://127.0.0.1:6379')

/** The shop's product page body (getProductPage + related), or undefined when the product does not exist. */
async function productPage(id: number) {
  const { rows } = await pool.query<ProductRow>(`SELECT ${COLUMNS} FROM products p WHERE p.id = $1`, [id])
  if (!rows[0]) return undefined
  const product = toProduct(rows[0])
  const [category, rating, reviews, related, images] = await Promise.all([
    pool.query<{ id: number; slug: string; name: string }>(
      'SELECT id, slug, name FROM categories WHERE id = $1',
      [product.categoryId],
    ),
    pool.query<{ count: number; average: string | null }>(
      'SELECT count(*)::int AS count, round(avg(rating), 2)::text AS average FROM reviews WHERE product_id = $1',
      [id],
    ),
    pool.query<{
      id: number
      product_id: number
      user_id: number
      rating: number
      body: string
      created_at: Date
    }>(
      `SELECT id, product_id, user_id, rating, body, created_at FROM reviews
       WHERE product_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
      [id, 5],
    ),
    pool.query<ProductRow>(
      `SELECT ${COLUMNS} FROM products p
       WHERE p.category_id = $1 AND p.id <> $2
       ORDER BY abs(p.price_cents - $3), p.id LIMIT $4`,
      [product.categoryId, id, product.priceCents, 5],
    ),
    pool.query<{ size: number; etag: string }>(
      'SELECT size, etag FROM product_thumbnails WHERE product_id = $1 ORDER BY size',
      [id],
    ),
  ])
  if (!category.rows[0]) return undefined
  const r = rating.rows[0]
  return {
    ...product,
    category: category.rows[0],
    rating: { count: r.count, average: r.average === null ? null : Number(r.average) },
    reviews: reviews.rows.map((v) => ({
      id: v.id,
      productId: v.product_id,
      userId: v.user_id,
      rating: v.rating,
      body: v.body,
      createdAt: v.created_at,
    })),
    images: Object.fromEntries(
      images.rows.map((i) => [String(i.size), `/api/products/${id}/image/${i.size}?v=${i.etag}`]),
    ),
    related: related.rows.map(toProduct),
  }
}

/** A positive integer id from the path, or undefined. */
function idOf(raw: string): number | undefined {
  const id = Number(raw)
  return Number.isSafeInteger(id) && id >= 1 ? id : undefined
}

const app = Fastify({ logger: false })

app.get<{ Params: { id: string } }>('/api/products/:id', async (request, reply) => {
  const id = idOf(request.params.id)
  if (id === undefined) return reply.code(400).send({ error: 'bad id' })
  const key = `${prefix}product:${id}`
  if (cached) {
    const hit = await redis.get(key)
    if (hit !== null) return reply.type('application/json').send(hit)
  }
  const page = await productPage(id)
  if (!page) return reply.code(404).send({ error: 'not found' })
  const body = JSON.stringify(page)
  if (cached) await redis.set(key, body, 'EX', ttl)
  return reply.type('application/json').send(body)
})

app.put<{ Params: { id: string }; Body: { priceCents?: unknown } }>(
  '/api/products/:id',
  async (request, reply) => {
    const id = idOf(request.params.id)
    const price = request.body?.priceCents
    if (id === undefined || typeof price !== 'number' || !Number.isSafeInteger(price) || price < 0)
      return reply.code(400).send({ error: 'want {"priceCents": <integer>}' })
    // The naive write: PostgreSQL only; the cached page is left as it was.
    const { rows } = await pool.query<{ version: number; price_cents: number }>(
      `UPDATE products SET price_cents = $2, version = version + 1, updated_at = now()
       WHERE id = $1 RETURNING version, price_cents`,
      [id, price],
    )
    if (!rows[0]) return reply.code(404).send({ error: 'not found' })
    return { id, version: rows[0].version, priceCents: rows[0].price_cents }
  },
)

async function stop(): Promise<void> {
  await app.close()
  await pool.end()
  redis.disconnect()
  process.exit(0)
}
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.on(signal, () => {
    process.stderr.write(`peer on port ${port}: ${signal}, stopping\n`)
    void stop()
  })

await app.listen({ port, host: '127.0.0.1' })
