/** The dashboard's options, from the settings (`src/config/settings/dashboard.ts`) and the store URLs. */
import path from 'node:path'
import type { Config } from '../config/index.js'
import type { SupervisorReader } from './stores.js'

export interface DashboardOptions {
  enabled: boolean
  intervalMs: number
  historyMs: number
  /** Required for actions when set (`Authorization: Bearer <token>`). */
  token: string | undefined
  maxClients: number
  /** The store Redis: registry and queues. */
  redisUrl: string | undefined
  /** The cache Redis (memory, evictions); undefined: shown as not configured, never the store's figures. */
  cacheRedisUrl: string | undefined
  /** PostgreSQL: durable jobs' records, touched only by a retry. */
  databaseUrl: string | undefined
  redisPrefix: string
  dbSchema: string
  /** `fleet up`'s control socket, read for restarts when it exists. */
  controlSocket: string | undefined
  /** How to ask it (src/stack/control.ts's requestStatus, given by the process that runs the dashboard). */
  readSupervisor?: SupervisorReader
}

/** The dashboard's options of a resolved config. */
export function dashboardOptionsFromConfig(config: Config): DashboardOptions {
  return {
    enabled: config.dashboard,
    intervalMs: config.dashboardInterval,
    historyMs: config.dashboardHistory,
    token: config.dashboardToken,
    maxClients: config.dashboardMaxClients,
    redisUrl: config.redisUrl,
    cacheRedisUrl: config.cacheRedisUrl,
    databaseUrl: config.databaseUrl,
    redisPrefix: config.redisPrefix,
    dbSchema: config.dbSchema,
    controlSocket: controlSocketOf(config.dataDir),
  }
}

/** `<data dir>/fleet.sock`, where `fleet up` answers for its status. */
export function controlSocketOf(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'fleet.sock')
}
