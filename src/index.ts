// Route schemas take OpenAPI fields (tags, summary): @fastify/swagger's augmentation of Fastify's types.
/// <reference types="@fastify/swagger" preserve="true" />
/**
 * Fleet's public API: what an application imports to run on the stack (`import { defineApp } from 'fleet'`).
 * Everything else under src/ is Fleet's own and may change without notice. See docs/guide.md.
 */

export type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
// Schemas (TypeBox, as Fastify's type provider uses it)
export { type Static, Type } from '@sinclair/typebox'
// The application
export {
  type AppDefinition,
  type AppSeed,
  appSettings,
  defineApp,
  type FleetApp,
  type SeedProgress,
} from './app/define.js'
export * from './app/errors.js'
export { loadApp } from './app/load.js'
export { appConfig, appMigrations, startAppWebServer, startAppWorker } from './app/runtime.js'
// The cache
export {
  type AssembleContext,
  type Cache,
  type CachedClass,
  type CacheOptions,
  type CacheStatus,
  type Depend,
  type ObjectSpec,
  worstStatus,
} from './cache/cache.js'
export {
  type AnyCachedQuery,
  type CachedQuery,
  type CachedQueryOptions,
  defineQuery,
} from './cache/cached-query.js'
// Settings
export { parseBytes, parseDuration, type SettingSpec, setting } from './config/define.js'
export type { Config, SettingSpecs, SettingsOf } from './config/index.js'
// PostgreSQL
export type { Database, Queryable, QueryResult, Row } from './db/database.js'
export type { Migration } from './db/migrations/index.js'
// Errors
export { FleetError, isFleetError } from './errors.js'
export type { JobView } from './jobs/client.js'
// Jobs
export { type AnyJobType, type CpuFunction, defineJob, type JobContext, type JobType } from './jobs/define.js'
export {
  DuplicateJobTypeError,
  JobCancelledError,
  JobNotFoundError,
  JobPayloadInvalidError,
  JobPermanentError,
} from './jobs/errors.js'
export { accepted, idempotencyKey, jobClient, jobOwner } from './jobs/routes.js'
// Logging
export type { Logger } from './log.js'
// The web runtime and sessions
export type { AppDeps } from './web/deps.js'
export {
  BadRequestError,
  BodyTooLargeError,
  RouteNotFoundError,
  UnavailableError,
  UnsupportedMediaTypeError,
  ValidationError,
} from './web/errors.js'
export type { App, Routes } from './web/server.js'
export {
  AuthenticationRequiredError,
  ForbiddenError,
  requireAdmin,
  requireUser,
  type Session,
  type SessionUser,
} from './web/session.js'
