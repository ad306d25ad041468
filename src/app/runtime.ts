/**
 * An application on Fleet's processes: its migrations after Fleet's, its job types beside Fleet's, its
 * cached classes and queries checked when a process starts, its routes and the jobs API on every web server,
 * its steps around start and stop.
 */
import type { Config } from '../config/index.js'
import { type RunningWorker, startWorker } from '../jobs/worker-process.js'
import type { ProcessDeps } from '../process/deps.js'
import { jobRoutes } from '../web/jobs-api.js'
import { type RunningWebServer, startWebServer } from '../web/main.js'
import type { FleetApp } from './define.js'
import { AppStartError, QueryNotCacheableError } from './errors.js'
import { appJobTypes, appMigrations } from './manifest.js'

/**
 * Makes the app's cached classes known to the serializer and checks each cached query against the schema
 * (after migrations): a query the cache cannot take fails the start with FLEET_E_APP_QUERY_NOT_CACHEABLE.
 */
export async function prepareApp(app: FleetApp, deps: ProcessDeps): Promise<void> {
  deps.cache.register(app.classes)
  for (const q of app.queries) {
    const reason = await deps.cache.whyNotCacheable(q.sql)
    if (reason) throw new QueryNotCacheableError(q.name, reason)
  }
}

/** Runs one of the app's steps, if it declares it; its failure names the app and the step. */
async function step(
  app: FleetApp,
  name: string,
  fn: ((deps: ProcessDeps) => Promise<void>) | undefined,
  deps: ProcessDeps,
): Promise<void> {
  try {
    await fn?.(deps)
  } catch (err) {
    throw new AppStartError(app.name, name, { cause: err })
  }
}

/** Starts a web server of the app: its routes, then the jobs API (`/api/jobs/:id`...). */
export function startAppWebServer(app: FleetApp, config: Config): Promise<RunningWebServer> {
  return startWebServer(config, {
    routes: [...app.routes, jobRoutes],
    migrations: appMigrations(app),
    openapi: { title: app.title ?? app.name, version: app.version ?? '1.0.0' },
    beforeListen: async (deps) => {
      await prepareApp(app, deps)
      await step(app, 'web.beforeListen', app.web?.beforeListen, deps)
    },
    afterClose: app.web?.afterClose,
  })
}

/** Starts a worker of the app: its job types and Fleet's, with the app's steps around them. */
export async function startAppWorker(app: FleetApp, config: Config): Promise<RunningWorker> {
  return startWorker(config, await appJobTypes(app, config), {
    migrations: appMigrations(app),
    beforeStart: async (deps) => {
      await prepareApp(app, deps)
      await step(app, 'worker.beforeStart', app.worker?.beforeStart, deps)
    },
    afterStop: app.worker?.afterStop,
  })
}
