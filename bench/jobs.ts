/**
 * Jobs against their anchors, in one run, on a redis-server this script starts (store role, its own port):
 * (a) no-op jobs enqueued and completed through Fleet's layer (JobClient.submit + JobRunner) against raw
 *     BullMQ (Queue.add + Worker) with the same concurrency and job options, after one uncounted warm-up
 *     round of each, rounds alternating which side goes first; both stop the clock when their processor has
 *     run for the last job; also prints the CPU each side spent per job here and in redis-server (steadier
 *     than jobs/s on a shared machine); target >= 0.9x;
 * (b) `POST /api/admin/recommendations` -> 202 latency through the load balancer (p50, p99), against
 *     `GET /healthz` through the same LB as the floor (the public port never forwards `/readyz`);
 * (c) the web tier's p99 on `GET /api/products/:id` through the LB with the worker idle and during a storm
 *     of thumbnail jobs for product 1 (one `fleet worker` at nice 19, as `fleet up` runs it), reading random
 *     ids over the catalog (the target: busy p99 <= 2x idle) and, apart, product 1's own page, which every
 *     finished job invalidates.
 *
 * Run: `npx tsx bench/jobs.ts` (or `npm run bench -- jobs`). PostgreSQL: DATABASE_URL when set, else an
 * embedded one in a temporary folder. Env: BENCH_JOBS (3000), BENCH_ROUNDS (3), BENCH_SECONDS (8),
 * BENCH_PRODUCTS (2000 seeded; (c) reads ids up to 1000), BENCH_POSTS (1000, part b), BENCH_STORM (400
 * thumbnail jobs), BENCH_PARTS (abc: which of the three to run; b and c run together). BENCH_SMOKE=1: 200
 * jobs, 1 round, 1 s runs, 200 products, 50 posts, a storm of 20 (bench/lib/smoke.ts).
 * Any error answer, failed thumbnail job or seed failure makes it exit non-zero (after the figures).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { type JobsOptions, Queue, Worker } from 'bullmq'
import { Registry as MetricsRegistry } from 'prom-client'
import sharp from 'sharp'
import { Pool } from 'undici'
import { thumbnailsJob } from '../apps/shop/images.js'
import shopApp from '../apps/shop/index.js'
import { appMigrations } from '../src/app/manifest.js'
import { loadConfig } from '../src/config/index.js'
import { Database } from '../src/db/database.js'
import { migrate } from '../src/db/migrate.js'
import { createPool } from '../src/db/pool.js'
import { noopJob } from '../src/jobs/catalog.js'
import { JobClient } from '../src/jobs/client.js'
import { defineJob } from '../src/jobs/define.js'
import { bullPrefix, connectQueueRedis, jobOptions } from '../src/jobs/queues.js'
import { JobRunner } from '../src/jobs/runner.js'
import { createLogger } from '../src/log.js'
import { connectRedis } from '../src/redis/connect.js'
import { freePort, waitForPort } from '../src/stack/ports.js'
import { lowerPriority } from '../src/stack/priority.js'
import { startScratchServices } from '../src/stack/scratch.js'
import { untilServed } from './lib/product-page.js'
import { exitOnErrors, fail, knob, smokeNote } from './lib/smoke.js'

const JOBS = knob('BENCH_JOBS', 3000, 200)
const ROUNDS = knob('BENCH_ROUNDS', 3, 1)
const SECONDS = knob('BENCH_SECONDS', 8, 1)
const PRODUCTS = knob('BENCH_PRODUCTS', 2000, 200)
const POSTS = knob('BENCH_POSTS', 1000, 50)
const STORM = knob('BENCH_STORM', 400, 20)
const PARTS = process.env.BENCH_PARTS ?? 'abc'
const CONCURRENCY = 16
/** Product ids read in (c): 1..RANGE of the seeded catalog. */
const RANGE = Math.min(1000, PRODUCTS)
/** The worker's niceness, as `fleet up` sets it (src/stack/roles.ts). */
const WORKER_NICE = 19
const root = fileURLToPath(new URL('../', import.meta.url))

const log = (line: string) => process.stdout.write(`${line}\n`)
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b)
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]
const pct = (xs: number[], p: number) => sorted(xs)[Math.min(xs.length - 1, Math.floor(xs.length * p))]
const ms = (v: number) => `${v.toFixed(2)} ms`

/** Runs `fn` on `n` items with at most `c` at once. */
async function pooled(n: number, c: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) await fn(next++)
    }),
  )
}

/** One side's figures for one round: throughput, and CPU per job in this process and in redis-server. */
interface Round {
  rate: number
  nodeUs: number
  redisUs: number
}

/** redis-server's CPU time so far, in µs (user + sys, from INFO). */
async function redisCpu(redis: { info(section: string): Promise<string> }): Promise<number> {
  const info = await redis.info('cpu')
  const get = (k: string) => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0)
  return (get('used_cpu_user') + get('used_cpu_sys')) * 1e6
}

async function rawBullmq(redisUrl: string, prefix: string, opts: JobsOptions): Promise<Round> {
  const conn = connectQueueRedis(redisUrl, 'bench-raw')
  const queue = new Queue('bench.raw', { connection: conn, prefix })
  let done = 0
  let finish: () => void = () => {}
  const all = new Promise<void>((r) => {
    finish = r
  })
  const worker = new Worker(
    'bench.raw',
    async () => {
      if (++done === JOBS) finish()
      return null
    },
    { connection: conn, prefix, concurrency: CONCURRENCY },
  )
  await worker.waitUntilReady()
  const r0 = await redisCpu(conn)
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await pooled(JOBS, 32, async () => {
    await queue.add('bench.raw', { payload: {}, owner: 'bench' }, opts)
  })
  await all
  const rate = JOBS / ((performance.now() - t0) / 1000)
  const c = process.cpuUsage(c0)
  const redisUs = (await redisCpu(conn)) - r0
  await worker.close()
  await queue.obliterate({ force: true })
  await queue.close()
  conn.disconnect()
  return { rate, nodeUs: (c.user + c.system) / JOBS, redisUs: redisUs / JOBS }
}

/**
 * noopJob's declaration, except that its processor also counts completions, as the raw side's does: both
 * sides stop the clock when their processor has run JOBS times.
 */
let fleetDone = 0
let fleetFinish: () => void = () => {}
const countedNoop = defineJob({
  ...noopJob,
  name: 'bench.noop',
  process: async (ctx) => {
    const out = await noopJob.process(ctx)
    if (++fleetDone === JOBS) fleetFinish()
    return out
  },
})

async function fleetLayer(env: Record<string, string>, db: Database): Promise<Round> {
  const config = loadConfig({ env: { ...env, FLEET_WORKER_CONCURRENCY: String(CONCURRENCY) } })
  const redis = connectRedis(config.redisUrl!)
  const client = new JobClient({ config, redis, db })
  const metrics = new MetricsRegistry()
  const runner = new JobRunner([countedNoop], {
    config,
    logger: createLogger({ logLevel: 'silent' }),
    db,
    metrics,
    instanceId: 'bench',
  })
  await runner.start()
  const queue = client.queues.get(countedNoop)
  fleetDone = 0
  const all = new Promise<void>((r) => {
    fleetFinish = r
  })
  const r0 = await redisCpu(redis)
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await pooled(JOBS, 32, async () => {
    await client.submit(countedNoop, {}, 'bench')
  })
  await all
  const rate = JOBS / ((performance.now() - t0) / 1000)
  const c = process.cpuUsage(c0)
  const redisUs = (await redisCpu(redis)) - r0
  await runner.stop(5_000)
  await queue.obliterate({ force: true })
  await client.close()
  redis.disconnect()
  return { rate, nodeUs: (c.user + c.system) / JOBS, redisUs: redisUs / JOBS }
}

function start(args: string[], env: Record<string, string>, nice?: number): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  if (nice !== undefined && child.pid && lowerPriority(child.pid, nice) === 0) {
    log(`(could not lower the priority of ${args[0]})`)
  }
  return child
}

/** A closed loop of `c` clients on `path` for `seconds`; returns the latencies in ms; an answer other than 200 is an error. */
async function load(
  pool: Pool,
  path: string | (() => string),
  seconds: number,
  c: number,
  headers = {},
): Promise<number[]> {
  const out: number[] = []
  const bad = new Map<string, number>()
  const end = Date.now() + seconds * 1000
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (Date.now() < end) {
        const t = performance.now()
        const res = await pool.request({
          method: 'GET',
          path: typeof path === 'string' ? path : path(),
          headers,
        })
        await res.body.dump()
        out.push(performance.now() - t)
        if (res.statusCode !== 200) {
          const key = `${res.statusCode} on ${typeof path === 'string' ? path : 'GET /api/products/:id'}`
          bad.set(key, (bad.get(key) ?? 0) + 1)
        }
      }
    }),
  )
  for (const [what, n] of bad) fail(`${n} of ${out.length} answers were ${what}`)
  return out
}

async function main(): Promise<void> {
  smokeNote('jobs bench')
  const services = await startScratchServices({ name: 'bench-jobs', databaseUrl: process.env.DATABASE_URL })
  const stops: (() => Promise<void>)[] = []
  const children: ChildProcess[] = []
  try {
    const { databaseUrl } = services
    const redisServer = { url: services.redisUrl }
    const id = randomBytes(4).toString('hex')
    const env: Record<string, string> = {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisServer.url,
      CACHE_REDIS_URL: redisServer.url,
      FLEET_DB_SCHEMA: `bench_jobs_${id}`,
      FLEET_REDIS_PREFIX: `bench:${id}:`,
      FLEET_LOG_LEVEL: 'warn',
      FLEET_ADMIN_EMAIL: 'admin@example.com',
      FLEET_ADMIN_PASSWORD: 'bench-password-123',
    }
    const config = loadConfig({ env, extra: shopApp.settings })
    const db = new Database(createPool(config))
    await migrate(db.pool, config.dbSchema, { migrations: appMigrations(shopApp) })
    stops.push(async () => {
      await db.pool.query(`DROP SCHEMA IF EXISTS ${config.dbSchema} CASCADE`).catch(() => {})
      await db.pool.end()
    })

    // (a) throughput
    if (PARTS.includes('a')) {
      log(`(a) ${JOBS} no-op jobs, worker concurrency ${CONCURRENCY}, ${ROUNDS} rounds (jobs/s, median)`)
      const raw: Round[] = []
      const fleet: Round[] = []
      const opts = jobOptions(noopJob, config)
      // One round of each first, not counted (JIT warm-up); then the order alternates between rounds.
      await rawBullmq(redisServer.url, bullPrefix(config), opts)
      await fleetLayer(env, db)
      for (let r = 0; r < ROUNDS; r++) {
        const sides = [
          async () => raw.push(await rawBullmq(redisServer.url, bullPrefix(config), opts)),
          async () => fleet.push(await fleetLayer(env, db)),
        ]
        if (r % 2 === 1) sides.reverse()
        for (const side of sides) await side()
      }
      const show = (name: string, rounds: Round[]) => {
        const rates = rounds.map((x) => x.rate)
        log(
          `    ${name.padEnd(17)} ${median(rates).toFixed(0)} jobs/s   (rounds: ${rates.map((x) => x.toFixed(0)).join(', ')})` +
            `   CPU per job: this process ${median(rounds.map((x) => x.nodeUs)).toFixed(0)} µs, ` +
            `redis-server ${median(rounds.map((x) => x.redisUs)).toFixed(0)} µs`,
        )
      }
      show('raw BullMQ', raw)
      show("Fleet's layer", fleet)
      const ratio = median(fleet.map((x) => x.rate)) / median(raw.map((x) => x.rate))
      log(`    ratio             ${ratio.toFixed(2)}x   target >= 0.90x  ${ratio >= 0.9 ? 'OK' : 'MISSED'}`)
    }
    if (!PARTS.includes('b') && !PARTS.includes('c')) return

    // The stack: seed, one web server, the LB in front.
    const seed = start(['seed', '--products', String(PRODUCTS), '--reviews', String(2 * PRODUCTS)], env)
    children.push(seed)
    const seeded = await new Promise<number | null>((r) => seed.once('exit', r))
    if (seeded !== 0) throw new Error(`fleet seed exited with ${seeded}`)
    const webPort = await freePort()
    const lbPort = await freePort()
    children.push(start(['web'], { ...env, FLEET_WEB_PORT: String(webPort) }))
    await waitForPort(webPort, '127.0.0.1', 120_000)
    children.push(
      start(['lb', '--upstream', `http://127.0.0.1:${webPort}`], {
        ...env,
        FLEET_PORT: String(lbPort),
        FLEET_LB_ADMIN_PORT: '0',
      }),
    )
    await waitForPort(lbPort, '127.0.0.1', 120_000)
    const lb = new Pool(`http://127.0.0.1:${lbPort}`, { connections: 32 })
    stops.push(() => lb.close())
    await untilServed(lbPort) // 503 until the LB's health check has seen the web server ready
    const login = await lb.request({
      method: 'POST',
      path: '/api/session',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: env.FLEET_ADMIN_EMAIL, password: env.FLEET_ADMIN_PASSWORD }),
    })
    await login.body.dump()
    if (login.statusCode !== 200) throw new Error(`POST /api/session answered ${login.statusCode}`)
    const cookie = String(login.headers['set-cookie']).split(';')[0]

    // (b) POST -> 202 through the LB (no worker yet: the jobs only queue)
    const post: number[] = []
    const floor = await load(lb, '/healthz', Math.min(2, SECONDS), 4)
    await pooled(POSTS, 4, async () => {
      const t = performance.now()
      const res = await lb.request({
        method: 'POST',
        path: '/api/admin/recommendations',
        headers: { cookie, 'content-type': 'application/json' },
        body: '{}',
      })
      await res.body.dump()
      if (res.statusCode !== 202) throw new Error(`POST answered ${res.statusCode}`)
      post.push(performance.now() - t)
    })
    log(`(b) POST /api/admin/recommendations -> 202 through the LB, ${POSTS} requests, 4 at once`)
    log(`    POST -> 202        p50 ${ms(pct(post, 0.5))}   p99 ${ms(pct(post, 0.99))}`)
    log(`    GET /healthz floor p50 ${ms(pct(floor, 0.5))}   p99 ${ms(pct(floor, 0.99))}`)
    const clientRedis = connectRedis(redisServer.url)
    stops.push(async () => clientRedis.disconnect())
    const client = new JobClient({ config, redis: clientRedis, db })
    await client.queues.get('shop.recommendations').obliterate({ force: true })

    // (c) web p99 idle vs a thumbnail storm
    const noise = randomBytes(1600 * 1200 * 3)
    const jpeg = await sharp(noise, { raw: { width: 1600, height: 1200, channels: 3 } })
      .jpeg()
      .toBuffer()
    const up = await lb.request({
      method: 'PUT',
      path: '/api/products/1/image',
      headers: { cookie, 'content-type': 'image/jpeg' },
      body: jpeg,
    })
    await up.body.dump()
    if (up.statusCode >= 300) throw new Error(`PUT /api/products/1/image answered ${up.statusCode}`)
    const worker = start(
      ['worker'],
      { ...env, FLEET_INSTANCE_ID: 'bench-worker', FLEET_WORKER_PORT: '0' },
      WORKER_NICE,
    )
    children.push(worker)
    const queue = client.queues.get(thumbnailsJob)
    for (let i = 0; ; i++) {
      const c = await queue.getJobCounts('completed', 'failed')
      if ((c.completed ?? 0) + (c.failed ?? 0) >= 1) break
      if (worker.exitCode !== null) throw new Error(`fleet worker exited with ${worker.exitCode}`)
      if (i === 600) throw new Error('no thumbnail job of the upload finished within 60 s')
      await new Promise((r) => setTimeout(r, 100))
    }
    if (worker.pid) lowerPriority(worker.pid, WORKER_NICE) // threads started before the first call, as fleet up does
    // Reads spread over the catalog (the stormed product 1 left out), as a shop's traffic is; and, apart,
    // the stormed product's own page, which every finished thumbnail job invalidates (cache misses, not CPU).
    const spread = () => `/api/products/${2 + Math.floor(Math.random() * (RANGE - 1))}`
    const stormed = '/api/products/1'
    await pooled(RANGE, 8, async (i) => {
      const res = await lb.request({ method: 'GET', path: `/api/products/${i + 1}` })
      await res.body.dump() // every page cached before the idle figures
      if (res.statusCode !== 200) throw new Error(`GET /api/products/${i + 1} answered ${res.statusCode}`)
    })
    await load(lb, spread, Math.min(2, SECONDS), 8) // warm up
    const idle = await load(lb, spread, SECONDS, 8)
    const idleOwn = await load(lb, stormed, SECONDS / 2, 8)
    for (let i = 0; i < STORM; i++) await client.submit(thumbnailsJob, { productId: 1, version: 1 }, 'bench')
    for (let i = 0; i < 100; i++) {
      if (((await queue.getJobCounts('active')).active ?? 0) > 0) break // the storm has started
      await new Promise((r) => setTimeout(r, 100))
    }
    const busy = await load(lb, spread, SECONDS, 8)
    const busyOwn = await load(lb, stormed, SECONDS / 2, 8)
    const counts = await queue.getJobCounts('active', 'waiting', 'completed', 'failed')
    log(
      `(c) GET /api/products/:id through the LB, 8 clients; worker at nice ${WORKER_NICE}; a storm of thumbnail jobs for product 1`,
    )
    const line = (label: string, xs: number[]) =>
      log(
        `    ${label.padEnd(44)} p50 ${ms(pct(xs, 0.5))}   p99 ${ms(pct(xs, 0.99))}   (${xs.length} requests)`,
      )
    line(`random ids 2..${RANGE}, workers idle (${SECONDS} s)`, idle)
    line(`random ids 2..${RANGE}, thumbnail storm (${SECONDS} s)`, busy)
    const r = pct(busy, 0.99) / pct(idle, 0.99)
    log(`    busy/idle p99      ${r.toFixed(2)}x   target <= 2x  ${r <= 2 ? 'OK' : 'MISSED'}`)
    line(`product 1 itself, workers idle (${SECONDS / 2} s)`, idleOwn)
    line(`product 1 itself, thumbnail storm (${SECONDS / 2} s)`, busyOwn)
    log(
      `    busy/idle p99      ${(pct(busyOwn, 0.99) / pct(idleOwn, 0.99)).toFixed(2)}x   (its page is invalidated by each finished job: misses)`,
    )
    log(
      `    thumbnail jobs: completed ${counts.completed}, failed ${counts.failed}, active ${counts.active}, queued ${counts.waiting}`,
    )
    if ((counts.failed ?? 0) > 0) fail(`${counts.failed} thumbnail job(s) failed`)
    if (worker.exitCode !== null) fail(`fleet worker exited with ${worker.exitCode} during the storm`)
    await queue.obliterate({ force: true })
    await client.close()
  } finally {
    const exits = children.map((c) =>
      c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null,
    )
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
    await Promise.all(exits)
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => fail(`cleanup: ${String(err)}`))
    await services.stop()
  }
}

await main()
exitOnErrors('bench/jobs.ts')
process.exit() // every connection is closed; do not wait for stray timers
