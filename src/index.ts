// Route schemas take OpenAPI fields (tags, summary): @fastify/swagger's augmentation of Fastify's types.
/// <reference types="@fastify/swagger" preserve="true" />
/**
 * Fleet's public API: what an application imports to run on the stack (`import { defineApp } from '@fleet-stack/fleet'`).
 * Everything else under src/ is Fleet's own and may change without notice. See docs/guide.md. (Exports are
 * kept in the linter's order; TypeBox's `Type` and `Static` are re-exported for route and job schemas.)
 */

export type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
export { type Static, Type } from '@sinclair/typebox'
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
export { appMigrations, startAppWebServer, startAppWorker } from './app/runtime.js'
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
export {
  type BuildContext,
  type BuiltResponse,
  defineResponse,
  type ResponseSpec,
} from './cache/responses.js'
export { parseBytes, parseDuration, type SettingSpec, setting } from './config/define.js'
export type { Config, SettingSpecs, SettingsOf } from './config/index.js'
export type { Database, Queryable, QueryResult, Row } from './db/database.js'
export type { Migration } from './db/migrations/index.js'
export { FleetError, isFleetError } from './errors.js'
export type { JobView } from './jobs/client.js'
export { type AnyJobType, type CpuFunction, defineJob, type JobContext, type JobType } from './jobs/define.js'
export {
  DuplicateJobTypeError,
  JobCancelledError,
  JobNotFoundError,
  JobPayloadInvalidError,
  JobPermanentError,
} from './jobs/errors.js'
export { accepted, idempotencyKey, jobClient, jobOwner } from './jobs/routes.js'
export type { Logger } from './log.js'
export type { AppDeps } from './web/deps.js'
export {
  BadRequestError,
  BodyTooLargeError,
  InvalidValueError,
  LoginThrottledError,
  RouteNotFoundError,
  UnavailableError,
  UnsupportedMediaTypeError,
  ValidationError,
} from './web/errors.js'
export {
  type LoginAttempt,
  type LoginReservation,
  LoginThrottle,
  loginThrottle,
} from './web/login-throttle.js'
export type { App, Routes } from './web/server.js'
export {
  AuthenticationRequiredError,
  ForbiddenError,
  requireAdmin,
  requireUser,
  type Session,
  type SessionUser,
} from './web/session.js'
export { INT4_MAX, STORABLE_TEXT, Text } from './web/validation.js'
