/**
 * `fleet init`: a project of your own on Fleet in a new folder (package.json, an app, its test, a README),
 * then `npm install` there. The project depends on the Fleet that runs the command: its version from the
 * registry, or the checkout itself (`file:`) when Fleet runs from a clone of its repository.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { InitFolderNotEmptyError, InitInstallFailedError, InitNameInvalidError } from './errors.js'
import { projectFiles } from './templates.js'

/** The root folder of the Fleet that runs (dist/init/project.js, or src/init/project.ts in tests). */
const FLEET_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Entries a folder may hold and still count as empty (a fresh `git init`, an editor's folder). */
const IGNORED = new Set(['.git', '.DS_Store', '.idea', '.vscode'])

const NAME = /^[a-z][a-z0-9-]{0,39}$/

export interface InitOptions {
  /** Project (and app) name; default: from the folder's name. */
  name?: string
  /** Fleet's dependency spec in package.json; default: see `defaultFleetSpec`. */
  fleet?: string
  /** Run `npm install` (default true). */
  install?: boolean
  /** Where progress lines go. */
  out?: (line: string) => void
}

export interface InitResult {
  folder: string
  name: string
  files: string[]
  fleetSpec: string
}

/** A project name from a folder's name: `My App` -> `my-app`. */
export function nameFromFolder(folder: string): string {
  const slug = path
    .basename(path.resolve(folder))
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '')
  return slug || 'app'
}

interface FleetPackage {
  version: string
  dependencies: Record<string, string>
  devDependencies?: Record<string, string>
}

async function fleetPackage(): Promise<FleetPackage> {
  return JSON.parse(await fs.readFile(path.join(FLEET_ROOT, 'package.json'), 'utf8')) as FleetPackage
}

/** `^<version>` for an installed Fleet; `file:<root>` for a checkout (nothing is published from it). */
export function defaultFleetSpec(version: string, root = FLEET_ROOT): string {
  return root.split(path.sep).includes('node_modules') ? `^${version}` : `file:${root.replace(/\/$/, '')}`
}

/** Writes the project into `folder` (created when missing, else it must be empty) and installs it. */
export async function initProject(folder: string, options: InitOptions = {}): Promise<InitResult> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`))
  const dir = path.resolve(folder)
  const name = options.name ?? nameFromFolder(dir)
  if (!NAME.test(name)) throw new InitNameInvalidError(name)
  const existing = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[]
    throw err
  })
  const blocking = existing.filter((e) => !IGNORED.has(e))
  if (blocking.length > 0) throw new InitFolderNotEmptyError(folder, blocking)

  const pkg = await fleetPackage()
  const fleetSpec = options.fleet ?? defaultFleetSpec(pkg.version)
  const files = projectFiles({
    name,
    fleetSpec,
    tools: {
      tsx: pkg.dependencies.tsx,
      typescript: pkg.devDependencies?.typescript ?? '5.9.3',
      typesNode: pkg.devDependencies?.['@types/node'] ?? '20.19.43',
    },
  })
  for (const [file, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true })
    await fs.writeFile(path.join(dir, file), text, { flag: 'wx' })
  }
  out(`fleet init: wrote ${Object.keys(files).join(', ')} in ${dir} (Fleet: ${fleetSpec})`)
  if (options.install !== false) {
    out('fleet init: npm install (a minute at most; npm shows its progress)')
    await npmInstall(dir)
  }
  const cd = path.relative(process.cwd(), dir) || '.'
  out('')
  out('next:')
  if (cd !== '.') out(`  cd ${cd}`)
  if (options.install === false) out('  npm install')
  out('  npm run dev     # the stack, at http://localhost:8080; saving a file reloads it')
  out("  npm test        # the app's tests, on real PostgreSQL and Redis")
  return { folder: dir, name, files: Object.keys(files), fleetSpec }
}

function npmInstall(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const npm = spawn('npm', ['install', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' })
    npm.once('error', (err) => reject(new InitInstallFailedError(dir, err.message)))
    npm.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new InitInstallFailedError(dir, signal ?? `exit ${code}`)),
    )
  })
}
