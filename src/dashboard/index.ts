/**
 * The live operations dashboard of a load balancer, served on its admin port (docs/dashboard.md). It holds
 * no data of its own: each snapshot is read from the sources (this LB, the registry, every process's
 * /metrics, the cache Redis, the queues, `fleet up`'s status), and only a ring of chart points is kept.
 *
 * @example
 * const dashboard = createDashboard({ options: dashboardOptionsFromConfig(config), lb, logger })
 * // in the admin server: if (dashboard.handle(req, res, path)) return
 * await dashboard.close()
 */
import type http from 'node:http'
import type { Pool } from '../db/pool.js'
import type { AdminExtensionFactory, LbView } from '../lb/view.js'
import type { Logger } from '../log.js'
import { loadAssets } from './assets.js'
import { DashboardRouter } from './http.js'
import type { DashboardOptions } from './options.js'
import { Sampler } from './sampler.js'

export type { LbView } from '../lb/view.js'
export { type DashboardOptions, dashboardOptionsFromConfig } from './options.js'

export interface Dashboard {
  /** Answers `req` when `path` is the dashboard's; false when it is not (the admin server goes on). */
  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean
  /** Ends the event streams, stops sampling, closes its connections. */
  close(): Promise<void>
}

/** The dashboard of the load balancer `lb`. Connections open when the first page (or snapshot) asks. */
export function createDashboard(deps: { options: DashboardOptions; lb: LbView; logger: Logger }): Dashboard {
  const logger = deps.logger.child({ subsystem: 'dashboard' })
  const { options } = deps
  let sampler: Sampler | undefined
  let pool: Promise<Pool | undefined> | undefined
  const router = new DashboardRouter({
    options,
    logger,
    assets: loadAssets(),
    sampler: () => {
      sampler ??= new Sampler(deps.lb, options, logger)
      return sampler
    },
    db: () => {
      pool ??= options.databaseUrl
        ? import('../db/pool.js').then(({ createPool }) =>
            createPool(
              {
                databaseUrl: options.databaseUrl,
                dbSchema: options.dbSchema,
                dbPoolMax: 1,
                dbStatementTimeout: 5_000,
                dbConnectTimeout: 2_000,
              },
              { applicationName: 'fleet-dashboard' },
            ),
          )
        : Promise.resolve(undefined)
      return pool
    },
  })
  return {
    handle: (req, res, path) => router.handle(req, res, path),
    async close() {
      router.closeAll()
      await sampler?.close()
      const p = await pool
      await p?.end().catch(() => {})
    },
  }
}

/**
 * The dashboard as an extension of an LB's admin port (`startLoadBalancer({ adminExtension })`); undefined
 * when the options say it is off.
 */
export function dashboardExtension(
  options: DashboardOptions,
  logger: Logger,
): AdminExtensionFactory | undefined {
  return options.enabled ? (lb) => createDashboard({ options, lb, logger }) : undefined
}
