/**
 * The cache against its anchors, in one run, on one redis-server this script starts (cache role, its own port):
 * (a) a cache hit (query and object) against a plain Redis GET of the same bytes, with round trips per hit;
 * (b) getOrSet-style hits and misses against bentocache (Redis driver only, no memory tier) and
 *     cache-manager (Keyv + @keyv/redis, no memory tier) on the same Redis;
 * (d) Fleet's serializer (msgpackr + class extension) against JSON on a ProductPage-like object.
 * (c) GET /api/products/:id-like pages through Fleet's load balancer, cached (ProductPage + RelatedProducts
 *     objects) against uncached (the shop's getProductPage on PostgreSQL), with wrk: one Fastify server
 *     built here (the shop's route does not use the cache yet), the same JSON either way.
 *
 * Run: `npx tsx bench/cache.ts` (or `npm run bench -- cache`). PostgreSQL: DATABASE_URL when set, else an
 * embedded one in a temporary folder. Env: BENCH_ROUNDS (3), BENCH_OPS (4000), BENCH_CONCURRENCY (32).
 */
import { execFile } from 'node:child_process'
import os from 'node:os'
import KeyvRedis from '@keyv/redis'
import { BentoCache, bentostore } from 'bentocache'
import { redisDriver } from 'bentocache/drivers/redis'
import { createCache as createCacheManager } from 'cache-manager'
import Fastify from 'fastify'
import { Keyv } from 'keyv'
import type { AssembleContext, ObjectSpec } from '../src/cache/cache.js'
import { createCache } from '../src/cache/cache.js'
import { connectCacheRedis } from '../src/cache/connect.js'
import { pack, registerClass, unpack } from '../src/cache/serializer.js'
import { ProductPage, RelatedProducts, worstStatus } from '../src/cache/shop-objects.js'
import { loadConfig } from '../src/config/index.js'
import { Database } from '../src/db/database.js'
import { migrate } from '../src/db/migrate.js'
import { createPool } from '../src/db/pool.js'
import { lbOptionsFromConfig, startLoadBalancer } from '../src/lb/index.js'
import { createLogger } from '../src/log.js'
import { getProductPage } from '../src/shop/catalog.js'
import { startScratchServices } from '../src/stack/scratch.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const OPS = Number(process.env.BENCH_OPS ?? 4000)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32)

const log = (line: string) => process.stdout.write(`${line}\n`)
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]

// ---------- a ProductPage-like class ----------
class BenchReview {
  id = 0
  rating = 0
  body = ''
  createdAt = new Date(0)
}
class BenchProduct {
  id = 0
  slug = ''
  name = ''
  description = ''
  priceCents = 0
  currency = 'EUR'
  stock = 0
  createdAt = new Date(0)
}
class BenchPage extends BenchProduct {
  category = { id: 0, slug: '', name: '' }
  rating = { count: 0, average: 0 as number | null }
  reviews: BenchReview[] = []
  related: BenchProduct[] = []
  attributes = new Map<string, string>()
  price(): string {
    return (this.priceCents / 100).toFixed(2)
  }
  static cache: ObjectSpec<BenchPage, number> = {
    name: 'BenchPage',
    key: (id) => String(id),
    tags: (id) => [`products:${id}`, `reviews.product_id:${id}`],
    nested: [BenchReview, BenchProduct],
    assemble: async (_ctx: AssembleContext, id: number) => makePage(id),
  }
}

function makeProduct(id: number): BenchProduct {
  return Object.assign(new BenchProduct(), {
    id,
    slug: `product-${id}`,
    name: `Product number ${id}`,
    description: 'A sturdy, well made thing that does what it says on the tin. '.repeat(4),
    priceCents: 1000 + id,
    stock: 7,
    createdAt: new Date(1_700_000_000_000 + id),
  })
}
function makePage(id: number): BenchPage {
  const page = Object.assign(new BenchPage(), makeProduct(id))
  page.category = { id: 3, slug: 'tools', name: 'Tools' }
  page.rating = { count: 5, average: 4.2 }
  page.reviews = Array.from({ length: 5 }, (_, i) =>
    Object.assign(new BenchReview(), {
      id: i,
      rating: 1 + (i % 5),
      body: 'Good value, arrived quickly, would buy again.',
      createdAt: new Date(1_700_000_000_000 + i),
    }),
  )
  page.related = Array.from({ length: 5 }, (_, i) => makeProduct(id + i + 1))
  page.attributes = new Map([
    ['colour', 'red'],
    ['weight', '1.2 kg'],
  ])
  return page
}

/** Runs `fn` `n` times with CONCURRENCY in flight; returns the elapsed ms. */
async function burst(fn: (i: number) => Promise<unknown>, n: number, offset: number): Promise<number> {
  let next = 0
  const start = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) await fn(offset + next++)
    }),
  )
  return performance.now() - start
}

interface Figures {
  opsPerSec: number
  p50: number
  p99: number
}

/**
 * Measures several functions against each other. The machine may be busy (others' work on shared cores), so
 * they are interleaved: throughput in alternating bursts of OPS/8 ops, latency one op of each in turn; the
 * drift of the background load then hits every contender alike.
 */
async function compare(
  fns: Record<string, (i: number) => Promise<unknown>>,
): Promise<Record<string, Figures>> {
  const names = Object.keys(fns)
  const ms: Record<string, number> = {}
  const lat: Record<string, number[]> = {}
  for (const n of names) {
    await burst(fns[n], OPS / 8, 0) // warm-up
    ms[n] = 0
    lat[n] = []
  }
  let offset = 1
  for (let r = 0; r < ROUNDS * 8; r++) {
    for (const n of names) {
      ms[n] += await burst(fns[n], OPS / 8, offset)
      offset += OPS / 8
    }
  }
  for (let i = 0; i < (OPS / 4) * ROUNDS; i++) {
    for (const n of names) {
      const t = performance.now()
      await fns[n](offset++)
      lat[n].push((performance.now() - t) * 1000)
    }
  }
  const out: Record<string, Figures> = {}
  for (const n of names) {
    out[n] = { opsPerSec: (ROUNDS * OPS) / (ms[n] / 1000), p50: pct(lat[n], 0.5), p99: pct(lat[n], 0.99) }
  }
  return out
}

function row(name: string, f: Figures, anchor?: Figures): string {
  const ratio = anchor ? `  ${(anchor.opsPerSec / f.opsPerSec).toFixed(2)}x the anchor's time per op` : ''
  return `${name.padEnd(44)} ${f.opsPerSec.toFixed(0).padStart(8)} ops/s  p50 ${f.p50.toFixed(0).padStart(5)} µs  p99 ${f.p99.toFixed(0).padStart(6)} µs${ratio}`
}

async function main(): Promise<void> {
  const services = await startScratchServices({
    name: 'bench-cache',
    redisRole: 'cache',
    databaseUrl: process.env.DATABASE_URL,
  })
  const stops: (() => Promise<void>)[] = [() => services.stop()]
  try {
    const { databaseUrl } = services
    const redisServer = { url: services.redisUrl }
    const schema = `bench_${process.pid}`
    const config = loadConfig({
      env: {
        DATABASE_URL: databaseUrl,
        CACHE_REDIS_URL: redisServer.url,
        FLEET_DB_SCHEMA: schema,
        FLEET_REDIS_PREFIX: 'bench:',
        FLEET_CACHE_TTL: '10m',
        FLEET_LOG_LEVEL: 'silent',
      },
    })
    const pool = createPool(config)
    stops.push(async () => {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await pool.end()
    })
    await migrate(pool, schema)
    await pool.query(`INSERT INTO categories (slug, name) VALUES ('tools', 'Tools')`)
    await pool.query(
      `INSERT INTO products (slug, name, description, price_cents, category_id)
       SELECT 'p-' || i, 'Product ' || i, repeat('words ', 40), 1000 + i, 1 FROM generate_series(1, 20) i`,
    )
    const redis = connectCacheRedis(config)
    stops.push(async () => redis.disconnect())
    const cache = await createCache({ redis, db: new Database(pool), config })
    stops.push(() => cache.close())
    registerClass(BenchReview, 'BenchReview')
    registerClass(BenchProduct, 'BenchProduct')

    log(
      `cache bench: per contender ${ROUNDS * OPS} ops (${CONCURRENCY} in flight, interleaved bursts) + ${(ROUNDS * OPS) / 4} sequential`,
    )
    log(`node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)}`)

    // ---------- (a) a hit against a plain GET of the same bytes ----------
    log('\n(a) hit vs plain Redis GET of the same bytes')
    const QUERY =
      'SELECT id, slug, name, description, price_cents, created_at FROM products WHERE id <= $1 ORDER BY id'
    await cache.query(QUERY, [10])
    await cache.get(BenchPage, 1)
    const entry = (id: string) => redis.hgetBuffer(`bench:{cache}:e:${id}`, 'd')
    const queryKey = (await redis.keys('bench:{cache}:e:q:*'))[0].slice('bench:{cache}:e:'.length)
    const queryBytes = (await entry(queryKey)) as Buffer
    const pageBytes = (await entry('o:BenchPage:1')) as Buffer
    await redis.set('bench:plain:q', queryBytes)
    await redis.set('bench:plain:o', pageBytes)
    let sent = 0
    const send = redis.sendCommand.bind(redis)
    redis.sendCommand = ((...args: Parameters<typeof send>) => {
      sent++
      return send(...args)
    }) as typeof redis.sendCommand
    const perHit = async (fn: () => Promise<unknown>) => {
      sent = 0
      for (let i = 0; i < 100; i++) await fn()
      return sent / 100
    }
    const a1 = await compare({
      get: () => redis.getBuffer('bench:plain:q'),
      getDecode: async () => unpack((await redis.getBuffer('bench:plain:q')) as Buffer),
      hit: () => cache.query(QUERY, [10]),
    })
    const [getQ, getQDecode, hitQ] = [a1.get, a1.getDecode, a1.hit]
    log(`query result: ${queryBytes.length} bytes (10 rows)`)
    log(row('plain GET (anchor)', getQ))
    log(row('plain GET + msgpack decode', getQDecode, getQ))
    log(row('cache.query hit', hitQ, getQ))
    log(`  round trips per hit: cache.query ${await perHit(() => cache.query(QUERY, [10]))}`)
    const a2 = await compare({
      get: () => redis.getBuffer('bench:plain:o'),
      hit: () => cache.get(BenchPage, 1),
    })
    const [getO, hitO] = [a2.get, a2.hit]
    log(`product page object: ${pageBytes.length} bytes`)
    log(row('plain GET (anchor)', getO))
    log(row('cache.get(BenchPage) hit (an instance back)', hitO, getO))
    log(`  round trips per hit: cache.get ${await perHit(() => cache.get(BenchPage, 1))}`)

    // ---------- (b) getOrSet against bentocache and cache-manager ----------
    log('\n(b) getOrSet hits and misses, Redis only (no in-process tier), same Redis')
    const bento = new BentoCache({
      default: 'redis',
      stores: {
        redis: bentostore().useL2Layer(
          redisDriver({ connection: { host: '127.0.0.1', port: Number(new URL(redisServer.url).port) } }),
        ),
      },
    })
    stops.push(() => bento.disconnectAll())
    const keyv = new Keyv({ store: new KeyvRedis(redisServer.url), namespace: 'cm' })
    const cm = createCacheManager({ stores: [keyv] })
    stops.push(async () => {
      await cm.disconnect()
    })
    const page = makePage(1)
    await bento.getOrSet({ key: 'hit', factory: () => page, ttl: '10m' })
    await cm.wrap('hit', async () => page, 600_000)
    const hits = await compare({
      fleet: () => cache.get(BenchPage, 1),
      bento: () => bento.getOrSet({ key: 'hit', factory: () => page, ttl: '10m' }),
      cm: () => cm.wrap('hit', async () => page, 600_000),
    })
    const misses = await compare({
      fleet: (i) => cache.get(BenchPage, 1_000_000 + i),
      bento: (i) => bento.getOrSet({ key: `m${i}`, factory: () => page, ttl: '10m' }),
      cm: (i) => cm.wrap(`m${i}`, async () => page, 600_000),
    })
    log(row('hit  bentocache (anchor)', hits.bento))
    log(row('hit  cache-manager (*)', hits.cm, hits.bento))
    log(row('hit  fleet cache.get', hits.fleet, hits.bento))
    log(`  fleet hit throughput / bentocache: ${(hits.fleet.opsPerSec / hits.bento.opsPerSec).toFixed(2)}x`)
    log(
      '  (*) cache-manager coalesces concurrent wrap() calls of one key in process: one Redis GET answers all',
    )
    log(
      '      of them, including reads that began after a write was acknowledged (Fleet does not, by design)',
    )
    log(row('miss bentocache (anchor)', misses.bento))
    log(row('miss cache-manager', misses.cm, misses.bento))
    log(row('miss fleet cache.get (3 round trips)', misses.fleet, misses.bento))
    const b: unknown = await bento.getOrSet({ key: 'hit', factory: () => page })
    const f = (await cache.get(BenchPage, 1)).value
    const describe = (v: unknown) =>
      v instanceof BenchPage
        ? `BenchPage instance, createdAt ${v.createdAt instanceof Date ? 'a Date' : typeof v.createdAt}, attributes ${v.attributes instanceof Map ? 'a Map' : typeof v.attributes}`
        : `plain ${typeof v}, createdAt ${typeof (v as { createdAt?: unknown }).createdAt}`
    log(`  what comes back: fleet: ${describe(f)}; bentocache: ${describe(b)}`)

    // ---------- (d) serializer against JSON ----------
    log('\n(d) serializer vs JSON on a ProductPage-like object (5 reviews, 5 related products)')
    const json = JSON.stringify(page)
    const packed = pack(page)
    const sync = async (fn: () => unknown) => fn()
    const d = await compare({
      jsonEnc: () => sync(() => JSON.stringify(page)),
      mpEnc: () => sync(() => pack(page)),
      jsonDec: () => sync(() => JSON.parse(json)),
      mpDec: () => sync(() => unpack(packed)),
    })
    const { jsonEnc, mpEnc, jsonDec, mpDec } = d
    log(`size: JSON ${Buffer.byteLength(json)} bytes, msgpackr ${packed.length} bytes`)
    log(row('encode JSON.stringify (anchor)', jsonEnc))
    log(row('encode fleet pack', mpEnc, jsonEnc))
    log(row('decode JSON.parse (anchor; plain objects, no Dates)', jsonDec))
    log(row('decode fleet unpack (instances, Dates, Map)', mpDec, jsonDec))
    // ---------- (c) the product page through the load balancer ----------
    log('\n(c) product page through the load balancer (wrk, 32 connections), cached vs uncached')
    const app = Fastify({ logger: false })
    const db = new Database(pool)
    app.get('/readyz', async () => ({ ok: true }))
    app.get<{ Params: { id: string } }>('/cached/:id', async (req, reply) => {
      const id = Number(req.params.id)
      const [p, r] = await Promise.all([cache.get(ProductPage, id), cache.get(RelatedProducts, id)])
      reply.header('x-cache', worstStatus(p.status, r.status))
      return { ...p.value.toJSON(), related: r.value.items }
    })
    app.get<{ Params: { id: string } }>('/uncached/:id', async (req) =>
      getProductPage(db, Number(req.params.id)),
    )
    await app.listen({ port: 0, host: '127.0.0.1' })
    stops.push(() => app.close())
    const webPort = (app.server.address() as { port: number }).port
    const lb = await startLoadBalancer({
      ...lbOptionsFromConfig(config),
      port: 0,
      adminPort: 0,
      host: '127.0.0.1',
      upstreams: [`http://127.0.0.1:${webPort}`],
      healthPath: '/readyz',
      logger: createLogger({ logLevel: 'silent' }),
    })
    stops.push(() => lb.close())
    // wrk runs as a child while this process serves (the web server and the LB live here).
    const wrk = (urlPath: string): Promise<number> =>
      new Promise((resolve, reject) =>
        execFile('wrk', ['-t1', '-c32', '-d4s', `http://127.0.0.1:${lb.port}${urlPath}`], (err, out) =>
          err ? reject(err) : resolve(Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0)),
        ),
      )
    const relatedOf = async (urlPath: string) =>
      JSON.stringify(
        ((await (await fetch(`http://127.0.0.1:${lb.port}${urlPath}`)).json()) as { related: unknown })
          .related,
      )
    const same = (await relatedOf('/cached/1')) === (await relatedOf('/uncached/1'))
    const cached: number[] = []
    const uncached: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      uncached.push(await wrk('/uncached/1'))
      cached.push(await wrk('/cached/1'))
    }
    const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
    const rounds = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ')
    log(`same related products either way: ${same}`)
    log(`uncached (anchor)  ${med(uncached).toFixed(0).padStart(8)} req/s   (rounds: ${rounds(uncached)})`)
    log(`cached             ${med(cached).toFixed(0).padStart(8)} req/s   (rounds: ${rounds(cached)})`)
    log(`  cached / uncached: ${(med(cached) / med(uncached)).toFixed(2)}x`)
  } finally {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => log(`cleanup: ${String(err)}`))
  }
}

await main()
