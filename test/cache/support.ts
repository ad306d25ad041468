/**
 * Cache test fixtures: an isolated schema (migrated: the core's fixture tables, or an app's) and key prefix, and any number of
 * "servers", each an independent cache instance with its own Redis connection and PostgreSQL pool.
 */

import type { FleetApp } from '../../src/app/define.js'
import { type Cache, createCache } from '../../src/cache/cache.js'
import { connectCacheRedis } from '../../src/cache/connect.js'
import { type Config, loadConfig } from '../../src/config/index.js'
import { Database } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrate.js'
import { createPool, type Pool } from '../../src/db/pool.js'
import { connectRedis, type Redis } from '../../src/redis/connect.js'
import { deleteKeys, isolatedEnv, migrationsOf } from '../support/context.js'
import { waitUntil } from '../support/wait.js'

export interface Server {
  cache: Cache
  db: Database
  redis: Redis
  pool: Pool
}

export interface Fixture {
  config: Config
  env: Record<string, string>
  /** A pool outside Fleet's database layer ("another program"). */
  admin: Pool
  server(options?: { db?: (pool: Pool) => Database; listen?: boolean; now?: () => number }): Promise<Server>
  cleanup(): Promise<void>
}

/** Cache settings that keep tests short. */
export const FAST: Record<string, string> = {
  FLEET_CACHE_BREAKER_COOLDOWN: '200ms',
  FLEET_CACHE_LOCK_WAIT: '5s',
  FLEET_CACHE_REDIS_TIMEOUT: '500ms',
}

export async function createFixture(env: Record<string, string> = {}, app?: FleetApp): Promise<Fixture> {
  const e = isolatedEnv({ ...FAST, ...env })
  const config = loadConfig({ env: e, extra: app?.settings })
  const admin = createPool(config)
  await migrate(admin, config.dbSchema, { migrations: migrationsOf(app) })
  const servers: Server[] = []
  return {
    config,
    env: e,
    admin,
    async server(options = {}) {
      const pool = createPool(config)
      const db = options.db ? options.db(pool) : new Database(pool)
      const redis = connectCacheRedis(config)
      const cache = await createCache({ redis, db, config, listen: options.listen, now: options.now })
      const s = { cache, db, redis, pool }
      servers.push(s)
      return s
    },
    async cleanup() {
      for (const s of servers) {
        await s.cache.close()
        await s.pool.end()
        if (s.redis.status === 'ready') await deleteKeys(s.redis, `${config.redisPrefix}*`).catch(() => {})
        s.redis.disconnect()
      }
      // Keys written without a server (e.g. the CLI's flush) are under the prefix too.
      const redis = connectRedis(config.cacheRedisUrl ?? config.redisUrl!) // queues until connected
      await deleteKeys(redis, `${config.redisPrefix}*`).catch(() => {})
      redis.disconnect()
      await admin.query(`DROP SCHEMA IF EXISTS ${config.dbSchema} CASCADE`).catch(() => {})
      await admin.end()
    },
  }
}

/** Inserts a category and `n` products in it; returns their ids. */
export async function seed(pool: Pool, n: number): Promise<{ category: number; products: number[] }> {
  const c = await pool.query<{ id: number }>(
    `INSERT INTO categories (slug, name) VALUES ('c-' || md5(random()::text), 'Cat') RETURNING id`,
  )
  const category = c.rows[0].id
  const products: number[] = []
  for (let i = 0; i < n; i++) {
    const p = await pool.query<{ id: number }>(
      `INSERT INTO products (slug, name, price_cents, category_id) VALUES ('p-' || md5(random()::text), $1, 100, $2) RETURNING id`,
      [`product ${i}`, category],
    )
    products.push(p.rows[0].id)
  }
  return { category, products }
}

/** Waits until `check` resolves true, polling every 20 ms, at most `ms`; false when it did not. */
export async function eventually(check: () => Promise<boolean>, ms = 2_000): Promise<boolean> {
  return waitUntil('a condition', check, ms, 20).then(
    () => true,
    () => false,
  )
}

export interface Gate {
  /** Awaited by a hook: resolves once the gate is opened. */
  wait(): Promise<void>
  /** Resolves when the first `wait()` is called (a load has reached the hook). */
  readonly reached: Promise<void>
  open(): void
}

/** Holds loads at a hook until the test opens it: a slow loader whose end the test chooses. */
export function gate(): Gate {
  let open: () => void = () => {}
  let reach: () => void = () => {}
  const opened = new Promise<void>((r) => {
    open = r
  })
  const reached = new Promise<void>((r) => {
    reach = r
  })
  return {
    wait() {
      reach()
      return opened
    },
    reached,
    open: () => open(),
  }
}

/** Lock waits counted by the servers (reads waiting for another server to fill an entry), all kinds. */
export async function lockWaits(servers: Server[]): Promise<number> {
  let n = 0
  for (const s of servers)
    for (const v of (await s.cache.metrics.lockWaits.get()).values) n += Number(v.value)
  return n
}
