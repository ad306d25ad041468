/**
 * Scratch services for tests and benchmarks: a redis-server and (unless a URL is given) an embedded
 * PostgreSQL on free ports, with their data in a temporary folder that `stop()` removes.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { freePort } from './ports.js'
import { EmbeddedPostgres } from './postgres.js'
import { LocalRedis, type RedisRole } from './redis.js'

export interface ScratchServices {
  databaseUrl: string
  redisUrl: string
  /** The temporary folder (PostgreSQL data and Redis AOF live below it). */
  dir: string
  /** Stops what was started and removes the folder. */
  stop(): Promise<void>
}

export interface ScratchOptions {
  /** Folder name prefix under the OS temp folder. */
  name: string
  /** Configure the Redis as the stack's store (noeviction) or cache (allkeys-lru). */
  redisRole?: RedisRole
  /** Use this PostgreSQL instead of starting one. */
  databaseUrl?: string
  /** Use this Redis instead of starting one. */
  redisUrl?: string
}

/**
 * Starts what is not given by URL.
 * @example const s = await startScratchServices({ name: 'bench-cache', databaseUrl: process.env.DATABASE_URL })
 */
export async function startScratchServices(o: ScratchOptions): Promise<ScratchServices> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `fleet-${o.name}-`))
  // The embedded PostgreSQL runs as `postgres` under root and must reach its folder.
  await fs.chmod(dir, 0o755)
  const stops: (() => Promise<void>)[] = []
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {})
    await fs.rm(dir, { recursive: true, force: true })
  }
  try {
    let databaseUrl = o.databaseUrl
    if (!databaseUrl) {
      const pg = new EmbeddedPostgres({
        dataDir: path.join(dir, 'postgres'),
        port: await freePort(),
        database: 'fleet',
      })
      await pg.start()
      stops.push(() => pg.stop())
      databaseUrl = pg.url
    }
    let redisUrl = o.redisUrl
    if (!redisUrl) {
      const redis = new LocalRedis({
        role: o.redisRole ?? 'store',
        dataDir: path.join(dir, 'redis'),
        port: await freePort(),
      })
      await redis.start()
      stops.push(() => redis.stop())
      redisUrl = redis.url
    }
    return { databaseUrl, redisUrl, dir, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/**
 * The environment of a `fleet up` of its own, for tests and benchmarks: this process's environment without
 * Fleet's settings and store URLs (so it starts its own stores), its data folder under `dir`, and free ports
 * for everything it listens on; `extra` is added last.
 * @example const env = await scratchUpEnv(dir, { FLEET_WEB: '3' })
 */
export async function scratchUpEnv(
  dir: string,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('FLEET_') && !k.endsWith('_URL')) env[k] = v
  }
  return {
    ...env,
    FLEET_DATA_DIR: path.join(dir, 'data'),
    FLEET_PORT: String(await freePort()),
    FLEET_LB_ADMIN_PORT: String(await freePort()),
    FLEET_PG_PORT: String(await freePort()),
    FLEET_REDIS_PORT: String(await freePort()),
    FLEET_CACHE_REDIS_PORT: String(await freePort()),
    FLEET_WEB_BASE_PORT: '0',
    FLEET_LOG_LEVEL: 'warn',
    ...extra,
  }
}
