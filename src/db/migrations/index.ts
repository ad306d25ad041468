/** Every migration, in the order it applies. Ids never change once released; add new ones at the end. */
import { shopSchema } from './001_shop_schema.js'
import { jobsSchema } from './005_jobs.js'
import { shopHeavyTasks } from './006_shop_heavy_tasks.js'

export interface Migration {
  /** Stable id, recorded in fleet_migrations. */
  readonly id: string
  /** SQL run in one transaction, in the configured schema. */
  readonly up: string
}

export const migrations: readonly Migration[] = [shopSchema, jobsSchema, shopHeavyTasks]
