// Route schemas take OpenAPI fields (tags, summary): @fastify/swagger's augmentation of Fastify's types.
/// <reference types="@fastify/swagger" preserve="true" />
/**
 * Fleet's public API for an app's author (`import { defineApp } from '@fleet-stack/fleet'`): declaring the app,
 * its settings, cached reads, jobs, sessions and the errors an app throws. docs/guide.md walks through it.
 * More, by subpath: `/types` (types for annotations), `/errors` (every error class), `/testing`
 * (testApp), `/runtime` (running Fleet's processes from code). Everything else under src/ is Fleet's own
 * and may change without notice; test/api.test.ts pins these lists. (Exports are kept in the linter's order.)
 */

export type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
export { Type } from '@sinclair/typebox'
export { type AppSeed, appSettings, defineApp } from './app/define.js'
export { type AssembleContext, type Cache, type ObjectSpec, worstStatus } from './cache/cache.js'
export { defineQuery } from './cache/cached-query.js'
export { defineResponse } from './cache/responses.js'
export { setting } from './config/define.js'
export type { SettingsOf } from './config/index.js'
export type { Database, Queryable } from './db/database.js'
export type { Migration } from './db/migrations/index.js'
export { FleetError } from './errors.js'
export { defineJob } from './jobs/define.js'
export { JobPermanentError } from './jobs/errors.js'
export type { AppDeps } from './process/deps.js'
export { accepted, idempotencyKey, jobClient, jobOwner } from './web/jobs-api.js'
export { loginThrottle } from './web/login-throttle.js'
export type { App, Routes } from './web/server.js'
export {
  AuthenticationRequiredError,
  ForbiddenError,
  requireAdmin,
  requireUser,
  type Session,
  type SessionUser,
} from './web/session.js'
export { INT4_MAX, Text } from './web/validation.js'
