/**
 * Finds and imports the application a command runs: `--app` / FLEET_APP, else a `fleet.config.*` file in
 * the working folder, else the built-in demo app. A `.ts` module is loaded through tsx, so an app written in
 * TypeScript runs without a build step.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isFleetError } from '../errors.js'
import { moduleUrl, resolveSource } from '../jobs/source.js'
import { useThisFleet } from '../loader/this-fleet.js'
import { type FleetApp, isFleetApp } from './define.js'
import { AppInvalidError, AppNotFoundError } from './errors.js'

/** Config files looked for in the working folder, in this order. */
export const CONFIG_FILES = ['fleet.config.ts', 'fleet.config.mts', 'fleet.config.js', 'fleet.config.mjs']

/**
 * The built-in demo app (the shop): `dist/apps/shop/` in a build, `apps/shop/` (TypeScript) in a checkout.
 * This is the only place where the core names it.
 */
const DEFAULT_APP = [
  new URL('../apps/shop/index.js', import.meta.url),
  new URL('../../apps/shop/index.js', import.meta.url),
]

/** Where an app module was found, and why that one. */
export interface AppLocation {
  /** Absolute file URL of the module (what children are given as FLEET_APP). */
  url: URL
  /** `--app/FLEET_APP`, `fleet.config.ts`, or `default`. */
  from: string
}

/** Which module to load: `spec` (a path or file URL) when given, else a config file in `cwd`, else the default. */
export function locateApp(spec: string | undefined, cwd = process.cwd()): AppLocation {
  if (spec) {
    const url = moduleUrl(spec, cwd)
    if (!fs.existsSync(url)) throw new AppNotFoundError(spec, '--app or FLEET_APP')
    return { url, from: '--app or FLEET_APP' }
  }
  for (const name of CONFIG_FILES) {
    const file = path.join(cwd, name)
    if (fs.existsSync(file)) return { url: pathToFileURL(file), from: name }
  }
  for (const candidate of DEFAULT_APP) {
    const url = resolveSource(candidate)
    if (fs.existsSync(url)) return { url, from: 'default' }
  }
  throw new AppNotFoundError('apps/shop', 'the default (was the build run?)')
}

let tsxRegistered = false
/**
 * tsx loads a `.ts` file as CommonJS when the nearest package.json does not say `"type": "module"` (or there
 * is none), and a Fleet app is an ES module: that fails deep in the loader ("Cannot require() ES Module ...
 * not yet fully loaded"). Says what to change instead.
 */
function checkEsm(file: string): void {
  const ext = path.extname(file)
  if (ext === '.cts')
    throw new AppInvalidError(file, 'is CommonJS (.cts): a Fleet app is an ES module; name it .ts or .mts')
  if (ext !== '.ts' && ext !== '.tsx') return
  const mts = `${path.basename(file, ext)}.mts`
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json')
    if (fs.existsSync(manifest)) {
      let type: unknown
      try {
        type = (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { type?: unknown }).type
      } catch {
        return // an unreadable package.json: Node's own error says more than a guess
      }
      if (type === 'module') return
      const says = type === undefined ? 'has no "type"' : `says "type": ${JSON.stringify(type)}`
      throw new AppInvalidError(
        file,
        `would load as CommonJS: ${manifest} ${says}, and a Fleet app is an ES module. Set "type": "module" there, or name the file ${mts}`,
      )
    }
    if (path.dirname(dir) === dir) break
  }
  throw new AppInvalidError(
    file,
    `would load as CommonJS: no package.json above it, and a Fleet app is an ES module. Start the project with \`fleet init\` (it writes package.json with "type": "module"), or name the file ${mts}`,
  )
}

/** Imports a module; a TypeScript one that Node cannot load by itself is imported again through tsx. */
async function importModule(url: URL): Promise<Record<string, unknown>> {
  try {
    return (await import(url.href)) as Record<string, unknown>
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_UNKNOWN_FILE_EXTENSION' || tsxRegistered) throw err
  }
  const tsx = await import('tsx/esm/api')
  // tsconfig: false, so the app's `import '@fleet-stack/fleet'` resolves through package.json to this copy of
  // Fleet, never to a `paths` mapping onto its sources (two copies of Fleet in one process).
  tsx.register({ tsconfig: false })
  tsxRegistered = true
  // Node remembers the failed import of this URL: a query makes it a new module for the loader.
  return (await import(`${url.href}?ts`)) as Record<string, unknown>
}

/**
 * Imports the app at `location` and checks that it exports one: `export default defineApp({...})` or
 * `export const app = defineApp({...})`.
 */
export async function importApp(location: AppLocation): Promise<FleetApp> {
  const where = location.from === 'default' ? 'the default app' : location.url.pathname
  let mod: Record<string, unknown>
  if (location.url.protocol === 'file:') checkEsm(fileURLToPath(location.url))
  useThisFleet()
  try {
    mod = await importModule(location.url)
  } catch (err) {
    if (isFleetError(err)) throw err
    throw new AppInvalidError(where, `cannot be imported: ${(err as Error).message}`, { cause: err })
  }
  const app = mod.default ?? mod.app
  if (app === undefined)
    throw new AppInvalidError(
      where,
      'exports no app: write `export default defineApp({...})` (defineApp from "@fleet-stack/fleet")',
    )
  if (!isFleetApp(app))
    throw new AppInvalidError(
      where,
      'its default export is not a defineApp({...}) result; wrap the declaration in defineApp',
    )
  return app
}

/** Locates and imports the app a command runs. */
export async function loadApp(
  spec: string | undefined,
  cwd?: string,
): Promise<{ app: FleetApp; location: AppLocation }> {
  const location = locateApp(spec, cwd)
  return { app: await importApp(location), location }
}
