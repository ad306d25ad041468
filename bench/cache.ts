/**
 * The cache against its anchors, in one run, on one redis-server this script starts (cache role, its own port):
 * (a) a cache hit (query and object) against a plain Redis GET of the same bytes, and against that GET plus
 *     decoding the bytes with Fleet's `unpack` (what any cache that returns values must also do); round
 *     trips per hit;
 * (b) getOrSet-style hits and misses against bentocache (Redis driver only, no memory tier) and
 *     cache-manager (Keyv + @keyv/redis, no memory tier) on the same Redis;
 * (d) Fleet's serializer (msgpackr + class extension) against JSON on a ProductPage-like object;
 * (c) the shop's real `GET /api/products/:id` through real processes, as Fleet runs: `fleet lb` in front of
 *     one `fleet web`, cached (FLEET_CACHE=true) against uncached (FLEET_CACHE=false: X-Cache BYPASS, the
 *     page assembled from PostgreSQL), one LB and one web server per configuration, on a seeded catalog;
 *     wrk requests random ids over a range, rounds alternating (bench/lib/product-page.ts).
 *
 * Run: `npx tsx bench/cache.ts` (or `npm run bench -- cache`); installs wrk with apt-get when missing.
 * PostgreSQL: DATABASE_URL when set, else an embedded one in a temporary folder. Env: BENCH_ROUNDS (3),
 * BENCH_OPS (4000), BENCH_CONCURRENCY (32), BENCH_SECONDS (4, per wrk run), BENCH_PRODUCTS (2000 seeded),
 * BENCH_RANGE (1000: (c) requests ids 1..BENCH_RANGE). BENCH_SMOKE=1: 1 round, 400 ops, 1 s runs, 200
 * products, ids 1..100 (bench/lib/smoke.ts).
 */
import type { ChildProcess } from 'node:child_process'
import os from 'node:os'
import KeyvRedis from '@keyv/redis'
import { BentoCache, bentostore } from 'bentocache'
import { redisDriver } from 'bentocache/drivers/redis'
import { createCache as createCacheManager } from 'cache-manager'
import { Keyv } from 'keyv'
import type { AssembleContext, ObjectSpec } from '../src/cache/cache.js'
import { createCache } from '../src/cache/cache.js'
import { connectCacheRedis } from '../src/cache/connect.js'
import { pack, registerClass, unpack } from '../src/cache/serializer.js'
import { loadConfig } from '../src/config/index.js'
import { Database } from '../src/db/database.js'
import { createPool } from '../src/db/pool.js'
import { startScratchServices } from '../src/stack/scratch.js'
import { productPageThroughLb, startFleet, stopChildren } from './lib/product-page.js'
import { exitOnErrors, fail, knob, smokeNote } from './lib/smoke.js'
import { ensureTools } from './lib/tools.js'

const ROUNDS = knob('BENCH_ROUNDS', 3, 1)
const OPS = knob('BENCH_OPS', 4000, 400)
const CONCURRENCY = knob('BENCH_CONCURRENCY', 32, 32)
const SECONDS = knob('BENCH_SECONDS', 4, 1)
const PRODUCTS = knob('BENCH_PRODUCTS', 2000, 200)
const RANGE = Math.min(PRODUCTS, knob('BENCH_RANGE', 1000, 100))

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

/** The lines that judge a hit against its two anchors: the bare GET and the GET plus decoding. */
function hitLines(label: string, hit: Figures, get: Figures, getDecode: Figures): string[] {
  const time = (anchor: Figures) => anchor.opsPerSec / hit.opsPerSec
  const p50 = (anchor: Figures) => hit.p50 / anchor.p50
  const target = time(getDecode)
  return [
    `  ${label} / (GET + decode): ${target.toFixed(2)}x the time per op, p50 ${p50(getDecode).toFixed(2)}x   ` +
      `target <= 1.3x  ${target <= 1.3 ? 'OK' : 'MISSED'}`,
    `  ${label} / bare GET:       ${time(get).toFixed(2)}x the time per op, p50 ${p50(get).toFixed(2)}x   ` +
      '(the bare GET returns bytes, not values: it is a floor, not a peer)',
  ]
}

async function main(): Promise<void> {
  smokeNote('cache bench')
  ensureTools(['wrk'])
  const services = await startScratchServices({
    name: 'bench-cache',
    redisRole: 'cache',
    databaseUrl: process.env.DATABASE_URL,
  })
  const stops: (() => Promise<void>)[] = [() => services.stop()]
  const children: ChildProcess[] = []
  try {
    const { databaseUrl } = services
    const redisServer = { url: services.redisUrl }
    const schema = `bench_${process.pid}`
    // The web servers and LBs of (c) share the schema; their keys live under their own prefix.
    const childEnv: Record<string, string> = {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisServer.url,
      CACHE_REDIS_URL: redisServer.url,
      FLEET_DB_SCHEMA: schema,
      FLEET_REDIS_PREFIX: 'benchweb:',
      FLEET_LOG_LEVEL: 'warn',
    }
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
    // The deterministic catalog (migrates first): products 1..PRODUCTS, two reviews per product on average.
    const seed = startFleet(
      ['seed', '--products', String(PRODUCTS), '--reviews', String(2 * PRODUCTS)],
      childEnv,
    )
    children.push(seed)
    const seeded = await new Promise<number | null>((r) => seed.once('exit', r))
    if (seeded !== 0) throw new Error(`fleet seed exited with ${seeded}`)
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
    log('\n(a) hit vs plain Redis GET of the same bytes, and vs that GET + decoding them (interleaved)')
    const QUERY =
      'SELECT id, slug, name, description, price_cents, created_at FROM products WHERE id <= $1 ORDER BY id'
    await cache.query(QUERY, [10])
    await cache.get(BenchPage, 1)
    const entry = (id: string) => redis.hgetBuffer(`bench:{cache}:e:${id}`, 'd')
    const queryKey = (await redis.keys('bench:{cache}:e:q:*'))[0].slice('bench:{cache}:e:'.length)
    const queryBytes = (await entry(queryKey)) as Buffer
    const pageBytes = (await entry('o:BenchPage:1')) as Buffer
    const decodedPage = unpack(pageBytes)
    if (!(decodedPage instanceof BenchPage))
      throw new Error('unpack of the cached BenchPage bytes did not give a BenchPage back')
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
    const trips = (label: string, n: number) =>
      `  round trips per hit: ${label} ${n}   target 1  ${n === 1 ? 'OK' : 'MISSED'}`
    const a1 = await compare({
      get: () => redis.getBuffer('bench:plain:q'),
      getDecode: async () => unpack((await redis.getBuffer('bench:plain:q')) as Buffer),
      hit: () => cache.query(QUERY, [10]),
    })
    log(`query result: ${queryBytes.length} bytes (10 rows)`)
    log(row('plain GET (anchor: floor)', a1.get))
    log(row('plain GET + fleet unpack (anchor: target)', a1.getDecode))
    log(row('cache.query hit (rows back)', a1.hit))
    for (const l of hitLines('hit', a1.hit, a1.get, a1.getDecode)) log(l)
    log(trips('cache.query', await perHit(() => cache.query(QUERY, [10]))))
    const a2 = await compare({
      get: () => redis.getBuffer('bench:plain:o'),
      getDecode: async () => unpack((await redis.getBuffer('bench:plain:o')) as Buffer),
      hit: () => cache.get(BenchPage, 1),
    })
    log(`product page object: ${pageBytes.length} bytes`)
    log(row('plain GET (anchor: floor)', a2.get))
    log(row('plain GET + fleet unpack (anchor: target)', a2.getDecode))
    log(row('cache.get(BenchPage) hit (an instance back)', a2.hit))
    for (const l of hitLines('hit', a2.hit, a2.get, a2.getDecode)) log(l)
    log(trips('cache.get', await perHit(() => cache.get(BenchPage, 1))))
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
    log(
      `\n(c) GET /api/products/:id through \`fleet lb\` -> \`fleet web\` (separate processes), cached vs uncached;` +
        ` random ids 1..${RANGE} of ${PRODUCTS} seeded (cached side warmed), wrk -t1 -c${CONCURRENCY} -d${SECONDS}s,` +
        ` ${ROUNDS} rounds alternating (medians); load average ${os.loadavg()[0].toFixed(1)}`,
    )
    await productPageThroughLb({
      env: childEnv,
      children,
      rounds: ROUNDS,
      seconds: SECONDS,
      connections: CONCURRENCY,
      range: RANGE,
    })
  } finally {
    await stopChildren(children)
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => fail(`cleanup: ${String(err)}`))
  }
}

await main()
exitOnErrors('bench/cache.ts')
process.exit() // every connection is closed; do not wait for stray timers
