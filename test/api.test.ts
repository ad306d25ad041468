/**
 * The public API, pinned: the names each entry of package.json's `exports` gives (types included, read with
 * TypeScript's own checker), so that a name is added or removed on purpose, with its docs; every name of
 * Fleet's own carries a doc comment; and package.json's `exports` map is exactly these entries, built.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../', import.meta.url))

/** Subpath -> its source entry and the names it exports. */
const API: Record<string, { entry: string; names: string[] }> = {
  '.': {
    entry: 'src/index.ts',
    names: [
      'App',
      'AppDeps',
      'AppSeed',
      'AssembleContext',
      'AuthenticationRequiredError',
      'Cache',
      'Database',
      'FleetError',
      'ForbiddenError',
      'INT4_MAX',
      'JobPermanentError',
      'Migration',
      'ObjectSpec',
      'Queryable',
      'Routes',
      'Session',
      'SessionUser',
      'SettingsOf',
      'Text',
      'Type',
      'TypeBoxTypeProvider',
      'accepted',
      'appSettings',
      'defineApp',
      'defineJob',
      'defineQuery',
      'defineResponse',
      'idempotencyKey',
      'jobClient',
      'jobOwner',
      'loginThrottle',
      'requireAdmin',
      'requireUser',
      'setting',
      'worstStatus',
    ],
  },
  './types': {
    entry: 'src/types.ts',
    names: [
      'AnyCachedQuery',
      'AnyJobType',
      'AppConfig',
      'AppDefinition',
      'BuildContext',
      'BuiltResponse',
      'CacheOptions',
      'CacheStatus',
      'CachedClass',
      'CachedQuery',
      'CachedQueryOptions',
      'CpuFunction',
      'Depend',
      'FleetApp',
      'JobContext',
      'JobType',
      'JobView',
      'Logger',
      'LoginAttempt',
      'LoginReservation',
      'QueryResult',
      'ResponseSpec',
      'Row',
      'SeedProgress',
      'SettingSpec',
      'SettingSpecs',
      'Static',
    ],
  },
  './errors': {
    entry: 'src/error-classes.ts',
    names: [
      'AppHasNoSeedError',
      'AppInvalidError',
      'AppNotFoundError',
      'AppStartError',
      'AuthenticationRequiredError',
      'BadRequestError',
      'BodyTooLargeError',
      'DuplicateCachedClassError',
      'DuplicateJobTypeError',
      'DuplicateMigrationError',
      'FleetError',
      'ForbiddenError',
      'InvalidValueError',
      'JobCancelledError',
      'JobNotFoundError',
      'JobPayloadInvalidError',
      'JobPermanentError',
      'LoginThrottledError',
      'QueryNotCacheableError',
      'RouteNotFoundError',
      'UnavailableError',
      'UnsupportedMediaTypeError',
      'ValidationError',
      'isFleetError',
    ],
  },
  './testing': { entry: 'src/testing.ts', names: ['TestAppOptions', 'TestedApp', 'testApp'] },
  './runtime': {
    entry: 'src/runtime.ts',
    names: [
      'Config',
      'LoginThrottle',
      'STORABLE_TEXT',
      'appMigrations',
      'loadApp',
      'loadConfig',
      'parseBytes',
      'parseDuration',
      'startAppWebServer',
      'startAppWorker',
    ],
  },
}

const program = ts.createProgram(
  Object.values(API).map((a) => path.join(root, a.entry)),
  {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
  },
)
const checker = program.getTypeChecker()

function exportsOf(entry: string): ts.Symbol[] {
  const file = program.getSourceFile(path.join(root, entry))
  const symbol = file && checker.getSymbolAtLocation(file)
  if (!symbol) throw new Error(`${entry}: not a module`)
  return checker.getExportsOfModule(symbol)
}

describe('the public API', () => {
  for (const [subpath, { entry, names }] of Object.entries(API)) {
    it(`${subpath === '.' ? '@fleet-stack/fleet' : `@fleet-stack/fleet/${subpath.slice(2)}`} exports what is pinned, each of Fleet's names with a doc comment`, () => {
      const symbols = exportsOf(entry)
      expect(symbols.map((s) => s.name).sort()).toEqual([...names].sort())
      const undocumented = symbols.filter((s) => {
        const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s
        const from = target.declarations?.[0]?.getSourceFile().fileName ?? ''
        if (from.includes('/node_modules/')) return false // TypeBox's Type and Static carry their own docs
        return ts.displayPartsToString(target.getDocumentationComment(checker)).trim() === ''
      })
      expect(undocumented.map((s) => s.name)).toEqual([])
    })
  }

  it('the main entry stays small: at most 35 names', () => {
    expect(API['.'].names.length).toBeLessThanOrEqual(35)
  })

  it("package.json's exports are these entries, each built to dist/ with its types", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      exports: Record<string, string | { types: string; default: string }>
    }
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json')
    expect(subpaths.sort()).toEqual(Object.keys(API).sort())
    for (const [subpath, { entry }] of Object.entries(API)) {
      const target = pkg.exports[subpath] as { types: string; default: string }
      const built = entry.replace(/^src\//, './dist/').replace(/\.ts$/, '')
      expect(target).toEqual({ types: `${built}.d.ts`, default: `${built}.js` })
      expect(fs.existsSync(path.join(root, target.default)), `${target.default} (npm run build)`).toBe(true)
    }
  })
})
