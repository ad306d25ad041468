/**
 * `@fleet-stack/fleet/testing`: your app on real PostgreSQL and Redis, for its own tests. Each `testApp` gets
 * a schema and a Redis key prefix of its own, which `close()` drops, so tests can share servers and run in
 * parallel.
 *
 * The servers, first that applies: `DATABASE_URL` and `REDIS_URL` (`options.env`, else the environment);
 * else the `fleet up` running in the working folder (`npm run dev` beside `npm test`); else a scratch
 * PostgreSQL (embedded) and redis-server started for this test and stopped by `close()` (a few seconds).
 *
 * @example
 * import { testApp } from '@fleet-stack/fleet/testing'
 * import app from '../app.js'
 *
 * const t = await testApp(app)
 * const res = await t.fetch('/hello')       // a real HTTP request to the app's web server
 * assert.equal(res.status, 200)
 * await t.close()
 */
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { FleetApp } from './app/define.js'
import { appMigrations } from './app/manifest.js'
import { prepareApp, startAppWorker } from './app/runtime.js'
import { type Config, loadConfig } from './config/index.js'
import type { Database } from './db/database.js'
import type { ProcessDeps } from './process/deps.js'
import { closeDeps, openDeps, prepareDeps } from './process/open.js'
import { startScratchServices } from './stack/scratch.js'
import { withStackStores } from './stack/stores.js'
import { jobRoutes } from './web/jobs-api.js'
import { buildServer } from './web/server.js'

/** How `testApp` runs the app. */
export interface TestAppOptions {
  /** Settings for this test, as environment variables (`{ FLEET_JOB_BACKOFF: '50ms' }`); over `process.env`. */
  env?: Record<string, string | undefined>
  /** Also run a worker of the app's jobs in this process, so a job the test starts runs to its end. */
  worker?: boolean
}

/** The app under test, serving on a free port. */
export interface TestedApp {
  /** The web server's base URL (127.0.0.1, a free port). */
  url: string
  /** `fetch` against the web server: `t.fetch('/api/x', { method: 'POST', ... })`. */
  fetch(path: string, init?: RequestInit): Promise<Response>
  /** The app's database, on the test's own schema (for setting up rows or checking them). */
  db: Database
  /** The settings the app runs with. */
  config: Config
  /** Stops the web server (and worker), drops the schema and the keys, stops servers started for the test. */
  close(): Promise<void>
}

/** Starts `app`'s web server (and, when asked, a worker) on its own schema and key prefix. */
export async function testApp(app: FleetApp, options: TestAppOptions = {}): Promise<TestedApp> {
  const id = randomBytes(5).toString('hex')
  const env: Record<string, string | undefined> = {
    ...process.env,
    FLEET_LOG_LEVEL: 'warn',
    ...options.env,
    FLEET_DB_SCHEMA: `test_${id}`,
    FLEET_REDIS_PREFIX: `test:${id}:`,
    FLEET_WEB_HOST: '127.0.0.1',
    FLEET_WEB_PORT: '0',
    FLEET_WORKER_HOST: '127.0.0.1',
    FLEET_WORKER_PORT: '0',
  }
  const cleanups: (() => Promise<void>)[] = []
  const close = async () => {
    for (const step of cleanups.reverse()) await step().catch(() => {})
  }
  try {
    let config = await withStackStores(loadConfig({ env, extra: app.settings }))
    if (!config.databaseUrl || !config.redisUrl) {
      const scratch = await startScratchServices({
        name: 'app-test',
        databaseUrl: config.databaseUrl,
        redisUrl: config.redisUrl,
      })
      cleanups.push(() => scratch.stop())
      const urls = { DATABASE_URL: scratch.databaseUrl, REDIS_URL: scratch.redisUrl }
      config = loadConfig({ env: { ...env, ...urls }, extra: app.settings })
    }
    const deps = openDeps(config, 'web')
    cleanups.push(() => dropIsolated(deps))
    await prepareDeps(deps, appMigrations(app))
    await prepareApp(app, deps)
    await app.web?.beforeListen?.(deps)
    const server = await buildServer(deps, {
      routes: [...app.routes, jobRoutes],
      readiness: { draining: false },
    })
    cleanups.push(async () => {
      await server.close()
      await app.web?.afterClose?.(deps)
    })
    await server.listen({ host: '127.0.0.1', port: 0 })
    if (options.worker) {
      const worker = await startAppWorker(app, config)
      cleanups.push(() => worker.stop())
    }
    const url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`
    return { url, fetch: (path, init) => fetch(new URL(path, url), init), db: deps.db, config, close }
  } catch (err) {
    await close()
    throw err
  }
}

/** Drops the test's schema and deletes its keys (SCAN, never KEYS), then closes the connections. */
async function dropIsolated(deps: ProcessDeps): Promise<void> {
  const { config } = deps
  await deps.cache.close().catch(() => {}) // it writes its last counters: before the keys go
  await deps.db.pool.query(`DROP SCHEMA IF EXISTS "${config.dbSchema}" CASCADE`).catch(() => {})
  for (const redis of new Set([deps.redis, deps.cacheRedis])) {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.redisPrefix}*`, 'COUNT', 500)
      if (keys.length > 0) await redis.unlink(...keys)
      cursor = next
    } while (cursor !== '0')
  }
  await closeDeps(deps)
}
