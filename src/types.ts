/**
 * `@fleet-stack/fleet/types`: the types an app may name in its own annotations, beyond the main entry's
 * (`import type { JobContext } from '@fleet-stack/fleet/types'`). Types only: nothing here runs.
 */
export type { Static } from '@sinclair/typebox'
export type { AppDefinition, FleetApp, SeedProgress } from './app/define.js'
export type { CachedClass, CacheOptions, CacheStatus, Depend } from './cache/cache.js'
export type { AnyCachedQuery, CachedQuery, CachedQueryOptions } from './cache/cached-query.js'
export type { BuildContext, BuiltResponse, ResponseSpec } from './cache/responses.js'
export type { SettingSpec } from './config/define.js'
export type { SettingSpecs } from './config/index.js'
export type { QueryResult, Row } from './db/database.js'
export type { JobView } from './jobs/client.js'
export type { AnyJobType, CpuFunction, JobContext, JobType } from './jobs/define.js'
export type { Logger } from './log.js'
export type { AppConfig } from './process/deps.js'
export type { LoginAttempt, LoginReservation } from './web/login-throttle.js'
