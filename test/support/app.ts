/**
 * An in-process web app on an isolated schema and key prefix, for `app.inject()` tests of route plugins.
 * Real PostgreSQL and Redis; no sockets unless the test listens.
 */
import type { FastifyInstance } from 'fastify'
import { loadConfig } from '../../src/config/index.js'
import type { AppDeps } from '../../src/web/deps.js'
import type { Readiness } from '../../src/web/health.js'
import { closeDeps, openDeps, prepareDeps } from '../../src/web/main.js'
import { buildServer, type Routes } from '../../src/web/server.js'
import { deleteKeys, isolatedEnv } from './context.js'

export interface TestApp {
  app: FastifyInstance
  deps: AppDeps
  env: Record<string, string>
  readiness: Readiness
  close(): Promise<void>
}

export async function createTestApp(
  routes: readonly Routes[] = [],
  options: { env?: Record<string, string>; beforeListen?: (deps: AppDeps) => Promise<void> } = {},
): Promise<TestApp> {
  const env = isolatedEnv({ FLEET_INSTANCE_ID: 'web-test', ...options.env })
  const config = loadConfig({ env })
  const deps = openDeps(config, 'web')
  await prepareDeps(deps)
  await options.beforeListen?.(deps)
  const readiness: Readiness = { draining: false }
  const app = await buildServer(deps, { routes, readiness })
  await app.ready()
  return {
    app,
    deps,
    env,
    readiness,
    async close() {
      await app.close()
      await deps.cache.close() // it writes its last counters: before the keys are deleted
      await deps.db.pool.query(`DROP SCHEMA IF EXISTS ${config.dbSchema} CASCADE`).catch(() => {})
      await deleteKeys(deps.redis, `${config.redisPrefix}*`)
      await closeDeps(deps)
    },
  }
}
