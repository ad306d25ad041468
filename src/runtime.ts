/**
 * `@fleet-stack/fleet/runtime`: Fleet's processes run from code instead of the `fleet` CLI (an operator's
 * own launcher, an embedding), and the lower-level pieces behind the main entry's helpers. An app's author
 * needs none of it.
 * @example
 * import { loadApp, startAppWebServer } from '@fleet-stack/fleet/runtime'
 * const { app } = await loadApp('./app.ts')
 * const server = await startAppWebServer(app, config) // config: see docs/configuration.md
 */
export { loadApp } from './app/load.js'
export { appMigrations } from './app/manifest.js'
export { startAppWebServer, startAppWorker } from './app/runtime.js'
export { parseBytes, parseDuration } from './config/define.js'
export { type Config, loadConfig } from './config/index.js'
export { LoginThrottle } from './web/login-throttle.js'
export { STORABLE_TEXT } from './web/validation.js'
