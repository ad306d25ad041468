/**
 * A wrong app gets an error that says what to fix, with a code: through the real CLI (`fleet migrate
 * --app ...`, a child process) for what a user meets first, in process for what defineApp and the start of a
 * server check. App modules are written under `<repo>/.fleet/` so that their `import '@fleet-stack/fleet'` resolves to
 * this package, as it would from a project that installed it.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defineApp } from '../../src/app/define.js'
import { defineQuery } from '../../src/cache/cached-query.js'
import { loadConfig } from '../../src/config/index.js'
import { createPool } from '../../src/db/pool.js'
import { Type } from '../../src/index.js'
import { selectJobTypes } from '../../src/jobs/catalog.js'
import { defineJob } from '../../src/jobs/define.js'
import { createTestApp } from '../support/app.js'
import { dropIsolated, isolatedEnv, uniqueId } from '../support/context.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))
const cli = path.join(root, 'dist/cli.js')
const dir = path.join(root, '.fleet', `app-errors-${uniqueId()}`)
const env = isolatedEnv()

/** Runs `fleet <args>` in `cwd`; resolves with its exit code and output (never rejects). */
async function fleet(args: string[], cwd = dir): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, [cli, ...args], { cwd, env: { ...process.env, ...env } })
    return { code: 0, out: r.stdout + r.stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, out: e.stdout + e.stderr }
  }
}

async function write(name: string, text: string): Promise<string> {
  const file = path.join(dir, name)
  await fs.mkdir(path.dirname(file), { recursive: true })
  await fs.writeFile(file, text)
  return file
}

beforeAll(async () => {
  await fs.mkdir(dir, { recursive: true })
})
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true })
  await dropIsolated(env)
})

describe('a wrong app module, through the CLI', () => {
  it('a path that does not exist: FLEET_E_APP_NOT_FOUND, exit 1', async () => {
    const r = await fleet(['migrate', '--app', 'nope/app.ts'])
    expect(r.code).toBe(1)
    expect(r.out).toMatch(/app module "nope\/app.ts" .* does not exist.*\[FLEET_E_APP_NOT_FOUND\]/)
  })

  it('a module without the export: FLEET_E_APP_INVALID names what to write', async () => {
    await write('no-export.ts', `export const answer = 42\n`)
    const r = await fleet(['migrate', '--app', 'no-export.ts'])
    expect(r.code).toBe(1)
    expect(r.out).toContain('exports no app: write `export default defineApp({...})`')
    expect(r.out).toContain('[FLEET_E_APP_INVALID]')
  })

  it('a default export that is not defineApp(): FLEET_E_APP_INVALID', async () => {
    await write('plain.mjs', `export default { name: 'plain', routes: [] }\n`)
    const r = await fleet(['migrate', '--app', 'plain.mjs'])
    expect(r.code).toBe(1)
    expect(r.out).toMatch(/is not a defineApp\(\{\.\.\.\}\) result.*\[FLEET_E_APP_INVALID\]/)
  })

  it('a module that does not compile: FLEET_E_APP_INVALID with the cause', async () => {
    await write(
      'broken.ts',
      `import { defineApp } from '@fleet-stack/fleet'\nexport default defineApp({ name: 'x' ) })\n`,
    )
    const r = await fleet(['migrate', '--app', 'broken.ts'])
    expect(r.code).toBe(1)
    expect(r.out).toMatch(/cannot be imported: .*\[FLEET_E_APP_INVALID\]/s)
  })

  it('a .ts app that would load as CommonJS: FLEET_E_APP_INVALID says which package.json to change', async () => {
    await write('cjs/package.json', '{ "name": "cjs", "type": "commonjs" }\n')
    await write(
      'cjs/app.ts',
      `import { defineApp } from '@fleet-stack/fleet'\nexport default defineApp({ name: 'cjs' })\n`,
    )
    const r = await fleet(['migrate', '--app', 'cjs/app.ts'])
    expect(r.code).toBe(1)
    expect(r.out).toContain(
      `would load as CommonJS: ${path.join(dir, 'cjs/package.json')} says "type": "commonjs"`,
    )
    expect(r.out).toContain('Set "type": "module" there, or name the file app.mts [FLEET_E_APP_INVALID]')
    expect(r.out).not.toMatch(/\n\s+at /) // no stack trace
  })

  it('an app in a folder with no package.json above it: FLEET_E_APP_INVALID points at fleet init', async () => {
    const bare = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-bare-'))
    try {
      await fs.writeFile(path.join(bare, 'app.ts'), `export default 1\n`)
      const r = await fleet(['migrate', '--app', path.join(bare, 'app.ts')])
      expect(r.code).toBe(1)
      expect(r.out).toContain('would load as CommonJS: no package.json above it')
      expect(r.out).toContain('`fleet init`')
    } finally {
      await fs.rm(bare, { recursive: true, force: true })
    }
  })

  it('an app outside any install of Fleet imports the Fleet that runs it (no node_modules)', async () => {
    const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-outside-'))
    try {
      await fs.writeFile(path.join(outside, 'package.json'), '{ "type": "module" }\n')
      await fs.writeFile(
        path.join(outside, 'app.ts'),
        `import { defineApp, Type } from '@fleet-stack/fleet'
if (typeof Type.Object !== 'function') throw new Error('not Fleet')
export default defineApp({ name: 'outside', migrations: [{ id: '001_outside', up: 'SELECT 1' }] })
`,
      )
      const r = await fleet(['migrate', '--app', 'app.ts'], outside)
      expect(r.out).toMatch(/migrations: \d+ applied, \d+ already in place \(app outside,/)
      expect(r.code).toBe(0)
    } finally {
      await fs.rm(outside, { recursive: true, force: true })
    }
  })

  it('two job types with one name: FLEET_E_JOBS_DUPLICATE_TYPE', async () => {
    await write(
      'dup-jobs.ts',
      `import { defineApp, defineJob, Type } from '@fleet-stack/fleet'
const job = () => defineJob({ name: 'dup.work', payload: Type.Object({}), process: async () => null })
export default defineApp({ name: 'dup', jobs: [job(), job()] })
`,
    )
    const r = await fleet(['migrate', '--app', 'dup-jobs.ts'])
    expect(r.code).toBe(1)
    expect(r.out).toMatch(/two job types are named "dup\.work".*\[FLEET_E_JOBS_DUPLICATE_TYPE\]/)
  })

  it('a migration that fails: FLEET_E_DB_MIGRATION names it and PostgreSQL’s error; nothing of it stays', async () => {
    await write(
      'bad-migration.ts',
      `import { defineApp } from '@fleet-stack/fleet'
export default defineApp({
  name: 'badmig',
  migrations: [
    { id: '001_ok', up: 'CREATE TABLE ok_table (id int PRIMARY KEY)' },
    { id: '002_broken', up: 'CREATE TABLE half (id int); CREATE TABLE oops (id int' },
  ],
})
`,
    )
    const r = await fleet(['migrate', '--app', 'bad-migration.ts'])
    expect(r.code).toBe(1)
    expect(r.out).toMatch(/migration 002_broken failed: syntax error.*\[FLEET_E_DB_MIGRATION\]/)
    const config = loadConfig({ env })
    const pool = createPool(config)
    try {
      const tables = await pool.query<{ t: string }>(
        `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`,
        [config.dbSchema],
      )
      // 001 applied (its own transaction); 002 left nothing, not even its first statement.
      expect(tables.rows.map((x) => x.t)).toEqual(['fleet_jobs', 'fleet_migrations', 'ok_table'])
    } finally {
      await pool.end()
    }
  })

  it('a fleet.config.ts in the working folder is the app; its migrations apply after Fleet’s', async () => {
    const sub = path.join(dir, 'project')
    await write(
      'project/fleet.config.ts',
      `import { defineApp } from '@fleet-stack/fleet'
export default defineApp({ name: 'configured', migrations: [{ id: '001_configured', up: 'SELECT 1' }] })
`,
    )
    const r = await fleet(['migrate'], sub)
    expect(r.out).toMatch(/migrations: 1 applied, \d already in place \(app configured/)
    expect(r.code).toBe(0)
    const config = loadConfig({ env })
    const pool = createPool(config)
    try {
      const ids = await pool.query<{ id: string }>(`SELECT id FROM ${config.dbSchema}.fleet_migrations`)
      expect(ids.rows.map((x) => x.id)).toEqual(expect.arrayContaining(['005_jobs', '001_configured']))
    } finally {
      await pool.end()
    }
  })
})

describe('defineApp refuses a declaration it cannot run', () => {
  const job = (name: string) => defineJob({ name, payload: Type.Object({}), process: async () => null })

  it.each([
    [{ name: 'Bad Name' }, 'FLEET_E_APP_INVALID', /name must be 1-40 lower-case/],
    [
      {
        name: 'a',
        migrations: [
          { id: '1', up: 'SELECT 1' },
          { id: '1', up: 'SELECT 2' },
        ],
      },
      'FLEET_E_APP_DUPLICATE_MIGRATION',
      /two migrations have the id "1"/,
    ],
    [{ name: 'a', jobs: [job('a.x'), job('a.x')] }, 'FLEET_E_JOBS_DUPLICATE_TYPE', /"a\.x"/],
    [{ name: 'a', routes: ['not a function'] }, 'FLEET_E_APP_INVALID', /routes\[0\] is not a route plugin/],
    [{ name: 'a', migrations: { id: 'x' } }, 'FLEET_E_APP_INVALID', /migrations must be an array/],
    [
      { name: 'a', settings: { databaseUrl: { env: 'X_DB', parse: String } } },
      'FLEET_E_APP_INVALID',
      /settings\.databaseUrl is one of Fleet's own settings/,
    ],
    [
      { name: 'a', settings: { db: { env: 'DATABASE_URL', parse: String } } },
      'FLEET_E_APP_INVALID',
      /settings\.db reads DATABASE_URL, which Fleet reads/,
    ],
    [
      { name: 'a', web: { beforeListen: 'soon' } },
      'FLEET_E_APP_INVALID',
      /web\.beforeListen must be an async function/,
    ],
  ])('%#: %o', (definition, code, message) => {
    let caught: unknown
    try {
      defineApp(definition as never)
    } catch (err) {
      caught = err
    }
    expect(caught).toMatchObject({ code })
    expect((caught as Error).message).toMatch(message)
  })

  it.each([
    [() => job('Bad Name'), 'FLEET_E_JOBS_TYPE_INVALID', /job type name "Bad Name" must be lower-case/],
    [
      () => defineJob({ name: 'a.x', payload: Type.Object({}), attempts: 0, process: async () => null }),
      'FLEET_E_JOBS_TYPE_INVALID',
      /job type a\.x: attempts must be a whole number of at least 1/,
    ],
    [
      () => defineJob({ name: 'a.x', payload: Type.Object({}), backoff: -1, process: async () => null }),
      'FLEET_E_JOBS_TYPE_INVALID',
      /backoff must be a number of milliseconds/,
    ],
    [
      () => defineQuery({ name: 'Q!', sql: 'SELECT 1' }),
      'FLEET_E_CACHE_QUERY_INVALID',
      /cached query name "Q!"/,
    ],
    [() => defineQuery({ name: 'q', sql: ' ' }), 'FLEET_E_CACHE_QUERY_INVALID', /sql must be a SELECT/],
    [
      () => selectJobTypes([[job('a.x')]], 'a.x, a.nope'),
      'FLEET_E_CONFIG_INVALID',
      /FLEET_JOB_QUEUES=.* it names unknown job types: a\.nope \(known: a\.x\)/,
    ],
  ])('defineJob, defineQuery, FLEET_JOB_QUEUES %#', (declare, code, message) => {
    let caught: unknown
    try {
      ;(declare as () => unknown)()
    } catch (err) {
      caught = err
    }
    expect(caught).toMatchObject({ code })
    expect((caught as Error).message).toMatch(message as RegExp)
  })

  it('a web server, worker, LB or migration started without a store it needs: FLEET_E_CONFIG_MISSING, exit 2, naming it', async () => {
    const bare = { PATH: process.env.PATH ?? '', FLEET_LOG_LEVEL: 'warn' }
    for (const [args, setting] of [
      [['web', '--port', '0'], 'DATABASE_URL'],
      [['migrate'], 'DATABASE_URL'],
      [['lb', '--port', '0', '--admin-port', '0'], 'FLEET_LB_UPSTREAMS'],
    ] as const) {
      const r = await run(process.execPath, [cli, ...args], { cwd: root, env: bare }).then(
        (x) => ({ code: 0, out: x.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, out: e.stderr }),
      )
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.out).toContain(`${setting} is not set`)
      expect(r.out).toContain('[FLEET_E_CONFIG_MISSING]')
      expect(r.out, `${args.join(' ')}: no stack trace`).not.toMatch(/\n\s+at /)
    }
  })

  it('fleet --version prints the version; a FLEET_* variable that is no setting is named, with the one meant', async () => {
    const bare = { PATH: process.env.PATH ?? '', FLEET_LOG_LEVEL: 'warn' }
    const pkg = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')) as { version: string }
    expect((await run(process.execPath, [cli, '--version'], { cwd: root, env: bare })).stdout.trim()).toBe(
      pkg.version,
    )
    const r = await run(process.execPath, [cli, 'migrate'], {
      cwd: root,
      env: { ...bare, FLEET_WEBS: '2' },
    }).then(
      () => ({ code: 0, out: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, out: e.stderr }),
    )
    expect(r.out).toContain(
      'fleet: warning: FLEET_WEBS is not a Fleet setting; did you mean FLEET_WEB? It is ignored.',
    )
  })

  // Ten CLI starts (each loads the whole CLI): a minute and a half leaves room for a loaded machine.
  it('every command’s --help fits a terminal: no line past 100 characters', { timeout: 90_000 }, async () => {
    const bare = { PATH: process.env.PATH ?? '', FLEET_LOG_LEVEL: 'warn' }
    const commands = ['up', 'web', 'worker', 'lb', 'migrate', 'seed', 'status', 'restart', 'cache', 'jobs']
    const widths = await Promise.all(
      commands.map(async (command) => {
        const { stdout } = await run(process.execPath, [cli, command, '--help'], { cwd: root, env: bare })
        return [command, Math.max(...stdout.split('\n').map((l) => l.length)) <= 100]
      }),
    )
    expect(widths).toEqual(commands.map((command) => [command, true]))
  })

  it('an app migration may not take one of Fleet’s ids', async () => {
    const app = defineApp({ name: 'clash', migrations: [{ id: '005_jobs', up: 'SELECT 1' }] })
    await expect(createTestApp([], { app })).rejects.toMatchObject({
      code: 'FLEET_E_APP_DUPLICATE_MIGRATION',
    })
  })

  it('a cached query the cache cannot take fails the start with FLEET_E_APP_QUERY_NOT_CACHEABLE', async () => {
    const cases: [string, RegExp][] = [
      ['SELECT 1', /reads no table/],
      ['SELECT * FROM missing_table', /reads missing_table, which the schema .* does not have/],
      ['DELETE FROM notes', /not one plain SELECT/],
      ['SELEC oops', /syntax error/],
    ]
    for (const [sql, reason] of cases) {
      const app = defineApp({
        name: 'queries',
        migrations: [{ id: '001_notes', up: 'CREATE TABLE notes (id int PRIMARY KEY)' }],
        queries: [defineQuery({ name: 'q.bad', sql })],
      })
      const err = await createTestApp([], { app }).then(
        () => undefined,
        (e: Error) => e,
      )
      expect(err, sql).toMatchObject({ code: 'FLEET_E_APP_QUERY_NOT_CACHEABLE' })
      expect(err?.message, sql).toMatch(reason)
    }
  })
})
