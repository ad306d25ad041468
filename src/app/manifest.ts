/**
 * What an app adds to Fleet's own lists, apart from running it: its migrations after Fleet's, its job types
 * beside Fleet's. The supervisor (`fleet up`) needs these lists and none of the web server or the worker.
 */
import type { Config } from '../config/index.js'
import { migrations as fleetMigrations, type Migration } from '../db/migrations/index.js'
import { builtinJobTypes, loadJobModules, selectJobTypes } from '../jobs/catalog.js'
import type { AnyJobType } from '../jobs/define.js'
import type { FleetApp } from './define.js'
import { DuplicateMigrationError } from './errors.js'

/** Fleet's migrations, then the app's; an app migration may not take one of Fleet's ids. */
export function appMigrations(app: FleetApp): readonly Migration[] {
  const own = new Set(fleetMigrations.map((m) => m.id))
  for (const m of app.migrations) if (own.has(m.id)) throw new DuplicateMigrationError(m.id)
  return [...fleetMigrations, ...app.migrations]
}

/** The job types a worker of the app runs: Fleet's, the app's, FLEET_JOB_MODULES'; only FLEET_JOB_QUEUES' when set. */
export async function appJobTypes(app: FleetApp, config: Config): Promise<AnyJobType[]> {
  return selectJobTypes(
    [builtinJobTypes, app.jobs, await loadJobModules(config.jobModules)],
    config.jobQueues,
  )
}
