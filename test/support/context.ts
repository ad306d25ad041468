/**
 * Per-test isolation on the shared services: a fresh PostgreSQL schema and Redis key prefix, a config that
 * points at them, and a cleanup that drops both.
 */
import { randomBytes } from 'node:crypto'
import { inject } from 'vitest'
import type { FleetApp } from '../../src/app/define.js'
import { appMigrations } from '../../src/app/manifest.js'
import { type Config, loadConfig } from '../../src/config/index.js'
import { migrate } from '../../src/db/migrate.js'
import { migrations as fleetMigrations, type Migration } from '../../src/db/migrations/index.js'
import { createPool, type Pool } from '../../src/db/pool.js'
import { connectRedis, type Redis } from '../../src/redis/connect.js'
import { coreFixture } from './fixture-schema.js'

export interface TestContext {
  config: Config
  /** Environment that gives a child process the same isolated config. */
  env: Record<string, string>
  pool: Pool
  redis: Redis
  cleanup(): Promise<void>
}

/**
 * The schema of the core's tests: Fleet's own migrations and the tests' fixture tables (users, categories,
 * products, reviews; test/support/fixture-schema.ts). An app's tests pass the app to migrate with its own.
 */
export const testMigrations = [...fleetMigrations, coreFixture]

/** The migrations of a test: the app's (after Fleet's) when given, else the core's fixture schema. */
export function migrationsOf(app?: FleetApp): readonly Migration[] {
  return app ? appMigrations(app) : testMigrations
}

/** A random suffix for schemas, prefixes and names. */
export function uniqueId(): string {
  return randomBytes(5).toString('hex')
}

/** The service URLs and an isolated schema/prefix, as environment variables. */
export function isolatedEnv(extra: Record<string, string> = {}): Record<string, string> {
  const id = uniqueId()
  return {
    DATABASE_URL: inject('databaseUrl'),
    REDIS_URL: inject('redisUrl'),
    CACHE_REDIS_URL: inject('redisUrl'),
    FLEET_DB_SCHEMA: `t_${id}`,
    FLEET_REDIS_PREFIX: `t:${id}:`,
    FLEET_LOG_LEVEL: 'silent',
    ...extra,
  }
}

/**
 * Creates an isolated schema (migrated unless `migrate: false`) and key prefix, with clients for both.
 * With `app`, the schema is the app's and the config reads the app's settings.
 */
export async function createTestContext(
  options: { migrate?: boolean; env?: Record<string, string>; app?: FleetApp } = {},
): Promise<TestContext> {
  const env = isolatedEnv(options.env)
  const config = loadConfig({ env, extra: options.app?.settings })
  const pool = createPool(config)
  const redis = connectRedis(config.redisUrl!)
  if (options.migrate !== false)
    await migrate(pool, config.dbSchema, { migrations: migrationsOf(options.app) })
  return {
    config,
    env,
    pool,
    redis,
    async cleanup() {
      await pool.query(`DROP SCHEMA IF EXISTS ${config.dbSchema} CASCADE`).catch(() => {})
      await pool.end()
      await deleteKeys(redis, `${config.redisPrefix}*`)
      redis.disconnect()
      // A test may point REDIS_URL at its own server while the cache Redis stays the shared one.
      if (config.cacheRedisUrl && config.cacheRedisUrl !== config.redisUrl) {
        const cache = connectRedis(config.cacheRedisUrl)
        await deleteKeys(cache, `${config.redisPrefix}*`).catch(() => {})
        cache.disconnect()
      }
    },
  }
}

/** Deletes every key matching `pattern` (SCAN, not KEYS, so a shared Redis is not blocked). */
export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await redis.del(...keys)
  } while (cursor !== '0')
}

/**
 * Drops what a process (a child, a CLI run) left under `env`'s isolated schema and key prefix
 * (`isolatedEnv`), for tests that did not open a TestContext of their own.
 */
export async function dropIsolated(env: Record<string, string>): Promise<void> {
  const config = loadConfig({ env })
  const pool = createPool(config)
  await pool.query(`DROP SCHEMA IF EXISTS ${config.dbSchema} CASCADE`).catch(() => {})
  await pool.end()
  const redis = connectRedis(config.redisUrl!)
  await deleteKeys(redis, `${config.redisPrefix}*`)
  redis.disconnect()
}

/** Records the name of every command `redis` sends from now on (lower case, in order) into the list returned. */
export function recordCommands(redis: Redis): string[] {
  const sent: string[] = []
  const send = redis.sendCommand.bind(redis)
  redis.sendCommand = (command, stream) => {
    sent.push(command.name.toLowerCase())
    return send(command, stream)
  }
  return sent
}
