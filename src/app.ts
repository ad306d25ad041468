/**
 * The application that `fleet web` serves: the route plugins and start-up steps of the shop and the job
 * routes, composed on the web runtime.
 */
import { jobRoutes } from './jobs/routes.js'
import { ensureAdmin, shopRoutes } from './shop/index.js'
import type { AppDeps } from './web/deps.js'
import type { Routes } from './web/server.js'

export const appRoutes: readonly Routes[] = [shopRoutes, jobRoutes]

/** Start-up steps of the application (after migrations, before listening). */
export async function appBeforeListen(deps: AppDeps): Promise<void> {
  await ensureAdmin(deps.db, deps.config)
}
