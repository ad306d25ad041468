/**
 * An in-process web app on an isolated schema and key prefix, for `app.inject()` tests of route plugins.
 * Real PostgreSQL and Redis; no sockets unless the test listens.
 */
import type { FastifyInstance } from 'fastify'
import type { FleetApp } from '../../src/app/define.js'
import { prepareApp } from '../../src/app/runtime.js'
import { loadConfig } from '../../src/config/index.js'
import type { ProcessDeps } from '../../src/process/deps.js'
import { closeDeps, openDeps, prepareDeps } from '../../src/process/open.js'
import type { Readiness } from '../../src/web/health.js'
import { jobRoutes } from '../../src/web/jobs-api.js'
import { buildServer, type Routes } from '../../src/web/server.js'
import { deleteKeys, isolatedEnv, migrationsOf } from './context.js'

export interface TestApp {
  app: FastifyInstance
  deps: ProcessDeps
  env: Record<string, string>
  readiness: Readiness
  close(): Promise<void>
}

export interface TestAppOptions {
  env?: Record<string, string>
  beforeListen?: (deps: ProcessDeps) => Promise<void>
  /** An app whose settings, migrations, classes and queries to use (its routes are the caller's choice). */
  app?: FleetApp
}

/** Route plugins on the web runtime, migrated with the core's fixture schema (or `options.app`'s migrations). */
export async function createTestApp(
  routes: readonly Routes[] = [],
  options: TestAppOptions = {},
): Promise<TestApp> {
  const env = isolatedEnv({ FLEET_INSTANCE_ID: 'web-test', ...options.env })
  const config = loadConfig({ env, extra: options.app?.settings })
  const deps = openDeps(config, 'web')
  await prepareDeps(deps, migrationsOf(options.app))
  if (options.app) await prepareApp(options.app, deps)
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

/** A whole app as `fleet web` serves it: its routes, then the jobs API, its start-up step. */
export function createAppTest(app: FleetApp, options: Omit<TestAppOptions, 'app'> = {}): Promise<TestApp> {
  return createTestApp([...app.routes, jobRoutes], {
    ...options,
    app,
    beforeListen: async (deps) => {
      await app.web?.beforeListen?.(deps)
      await options.beforeListen?.(deps)
    },
  })
}
