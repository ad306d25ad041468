/**
 * docs/guide.md, run (undici's test/examples.js idea): every code block is exercised, in the guide's order.
 * - ```ts blocks (`// file: <name>.ts`) are written to `<repo>/.fleet/guide-<id>/` (so
 *   `import '@fleet-stack/fleet'` resolves to this package), type-checked with tsc against the public API, and
 *   must each be used: imported by another file, named by a command's `--app`, (fleet.config.ts) found by a
 *   command without one, or (`*.test.ts`) run with `node --import tsx --test` and passing. The
 *   first is the app module: it is imported and served in process on real PostgreSQL and Redis
 *   (createAppTest); a real `fleet worker` child runs its jobs, from the first one accepted.
 * - ```http blocks are sent with app.inject() as one browser (a cookie jar); the status and the headers and
 *   fields shown must match. A GET of a job is polled until it matches (30 s). The job id shown in a 202's
 *   Location stands for the real one in the blocks after it.
 * - ```console blocks: each `$ npm run fleet -- ...` runs the built CLI (`node dist/cli.js`) in the guide's
 *   folder, on a fresh schema of its own; the lines shown must appear, in order; a `fleet: ...` line means
 *   it must fail.
 * - ```sh blocks only show how to start a stack: each command's flags must be listed by its `--help` (with
 *   the same `--app`), their values and the variables set before it must parse as that command's settings.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FleetApp, isFleetApp } from '../src/app/define.js'
import { configFromOptions } from '../src/cli/options.js'
import { flagOf } from '../src/config/define.js'
import { settings } from '../src/config/index.js'
import { spawnWorker, type WorkerChild } from './jobs/support.js'
import { createAppTest, type TestApp } from './support/app.js'
import { dropIsolated, isolatedEnv, uniqueId } from './support/context.js'
import {
  type Block,
  CookieJar,
  codeBlocks,
  consoleSteps,
  expectEvents,
  fileOf,
  fleetArgs,
  type HttpExample,
  jsonPattern,
  longOptions,
  parseHttp,
  shellWords,
  wildcard,
} from './support/guide.js'

const root = fileURLToPath(new URL('../', import.meta.url))
const cli = path.join(root, 'dist/cli.js')
const blocks = codeBlocks(fs.readFileSync(path.join(root, 'docs/guide.md'), 'utf8'))
const scripts = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: object })
  .scripts
const dir = path.join(root, '.fleet', `guide-${uniqueId()}`)
const tsBlocks = blocks.filter((b) => b.lang === 'ts')
const appFile = tsBlocks[0] ? fileOf(tsBlocks[0]) : undefined
/** The CLI's own database and key prefix: its sessions start from an empty schema. */
const cliEnv = isolatedEnv()
const JOB_ID = /[a-z][a-z0-9.]*-[0-9a-f]{32}/

let t: TestApp | undefined
let app: FleetApp
let worker: WorkerChild | undefined
let typecheck: Promise<Run>
const jar = new CookieJar()
/** Job ids shown in the guide -> the real ones. */
const jobIds = new Map<string, string>()

interface Run {
  code: number
  out: string
}

/** Runs a program; resolves with its exit code and output (never rejects; killed after `timeout` ms). */
function run(file: string, args: string[], env: Record<string, string> = {}, timeout = 60_000): Promise<Run> {
  return new Promise((resolve) =>
    execFile(file, args, { cwd: dir, env: { ...process.env, ...env }, timeout }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    ),
  )
}

const fleet = (args: string[], env: Record<string, string> = {}) => run(process.execPath, [cli, ...args], env)

beforeAll(async () => {
  expect(appFile, 'the first TypeScript block is the app module (// file: <name>.ts)').toBeDefined()
  fs.mkdirSync(dir, { recursive: true })
  for (const b of tsBlocks) {
    const name = fileOf(b)
    if (name) fs.writeFileSync(path.join(dir, name), `${b.text}\n`)
  }
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: '../../tsconfig.json',
      compilerOptions: { rootDir: '../..' },
      include: ['*.ts'],
    }),
  )
  typecheck = run(process.execPath, [
    path.join(root, 'node_modules/typescript/bin/tsc'),
    '-p',
    '.',
    '--pretty',
    'false',
  ])
  const mod = (await import(/* @vite-ignore */ pathToFileURL(path.join(dir, appFile!)).href)) as {
    default?: unknown
  }
  expect(isFleetApp(mod.default), `${appFile} exports defineApp({...}) as its default`).toBe(true)
  app = mod.default as FleetApp
  t = await createAppTest(app)
}, 120_000)

/**
 * Starts the worker when the first job is accepted (it waits in the queue meanwhile), not before: a worker
 * also applies the notifications of the web server's writes, a few ms after them, which would make the
 * cache examples' HIT after a write a MISS now and then.
 */
async function startWorker(): Promise<void> {
  worker ??= await spawnWorker({
    ...t!.env,
    FLEET_APP: path.join(dir, appFile!),
    FLEET_INSTANCE_ID: 'worker-guide',
    FLEET_WORKER_THREADS: '1',
  })
}

afterAll(async () => {
  if (worker) {
    worker.child.kill('SIGKILL')
    await worker.exited
  }
  await t?.close()
  await dropIsolated(cliEnv)
  fs.rmSync(dir, { recursive: true, force: true })
}, 60_000)

/** Every `--app` a command of the guide names, and whether one names none (it runs fleet.config.ts). */
function appsNamed(): { named: Set<string>; bare: boolean } {
  const named = new Set<string>()
  let bare = false
  for (const b of blocks) {
    if (b.lang !== 'sh' && b.lang !== 'console') continue
    const lines = b.lang === 'sh' ? b.text.split('\n') : consoleSteps(b.text).map((s) => s.command)
    for (const line of lines) {
      const args = fleetArgs(shellWords(line).words)
      if (!args || args.length === 0) continue
      const a = longOptions(args.slice(1)).get('app')
      if (typeof a === 'string') named.add(path.basename(a))
      else bare = true
    }
  }
  return { named, bare }
}

async function checkTypeScript(block: Block): Promise<void> {
  const name = fileOf(block)
  expect(name, 'a TypeScript block opens with `// file: <name>.ts`').toBeDefined()
  const { code, out } = await typecheck
  expect(
    out.split('\n').filter((l) => l.startsWith(`${name}(`)),
    `tsc on ${name}`,
  ).toEqual([])
  if (block === tsBlocks[0]) expect(code, `tsc on the guide's files:\n${out}`).toBe(0)
  const imported = tsBlocks.some((b) => b.text.includes(`from './${name!.replace(/\.ts$/, '.js')}'`))
  const { named, bare } = appsNamed()
  const isTest = name!.endsWith('.test.ts')
  const used = imported || named.has(name!) || (name === 'fleet.config.ts' && bare) || isTest
  expect(used, `${name} is imported by another file or run by a command`).toBe(true)
  if (isTest) {
    // The app's own test, as the guide says to run it (on the suite's servers, a schema of its own).
    const r = await run(process.execPath, ['--import', 'tsx', '--test', name!], isolatedEnv(), 120_000)
    expect(r.out, `node --test ${name}`).toMatch(/# fail 0\n/)
    expect(r.code, `node --test ${name}:\n${r.out}`).toBe(0)
  }
}

function compareAnswer(ex: HttpExample, res: Awaited<ReturnType<TestApp['app']['inject']>>): void {
  const what = `${ex.method} ${ex.url}`
  expect(res.statusCode, `status of ${what}: ${res.body}`).toBe(ex.status)
  for (const [name, shown] of ex.answerHeaders) {
    const h = res.headers[name.toLowerCase()]
    const values = h === undefined ? [] : Array.isArray(h) ? h : [String(h)]
    const seen = values.join(' | ') || '(none)'
    expect(
      values.some((v) => wildcard(shown).test(v)),
      `${what}: header ${name}: ${shown} (got ${seen})`,
    ).toBe(true)
  }
  if (!ex.answerBody) return
  if (String(res.headers['content-type']).startsWith('text/event-stream'))
    expectEvents(res.body, ex.answerBody)
  else expect(res.json(), `body of ${what}`).toMatchObject(jsonPattern(JSON.parse(ex.answerBody)) as object)
}

async function checkHttp(block: Block): Promise<void> {
  const substituted = (text: string) =>
    [...jobIds].reduce((s, [shown, real]) => s.replaceAll(shown, real), text)
  let ex = parseHttp(substituted(block.text))
  const send = async () => {
    const res = await t!.app.inject({
      method: ex.method as 'GET',
      url: ex.url,
      headers: { ...ex.headers, ...(jar.header ? { cookie: jar.header } : {}) },
      ...(ex.body ? { payload: ex.body } : {}),
    })
    jar.take(res.cookies as { name: string; value: string; maxAge?: number; expires?: Date }[])
    return res
  }
  let res = await send()
  // A job id shown in a Location stands for the real one from here on.
  const shownLocation = ex.answerHeaders.find(([k]) => k.toLowerCase() === 'location')?.[1]
  const shownId = shownLocation && JOB_ID.exec(shownLocation)?.[0]
  const realId = JOB_ID.exec(String(res.headers.location ?? ''))?.[0]
  if (shownId && realId && shownId !== realId) {
    jobIds.set(shownId, realId)
    ex = parseHttp(substituted(block.text))
  }
  if (realId) await startWorker()
  const poll = ex.method === 'GET' && /^\/api\/jobs\/[^/]+$/.test(ex.url)
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      compareAnswer(ex, res)
      return
    } catch (err) {
      if (!poll || Date.now() > deadline) throw err
    }
    await new Promise((r) => setTimeout(r, 100))
    res = await send()
  }
}

async function checkConsole(block: Block): Promise<void> {
  for (const step of consoleSteps(block.text)) {
    const { env, words } = shellWords(step.command)
    const args = fleetArgs(words)
    expect(args, `"${step.command}" runs the Fleet CLI (npm run fleet -- ... or npx fleet ...)`).toBeDefined()
    const r = await fleet(args!, { ...cliEnv, ...env })
    const lines = r.out.split('\n').map((l) => l.trim())
    let from = 0
    for (const shown of step.output) {
      const pattern = wildcard(shown, { loose: true })
      const at = lines.findIndex((l, i) => i >= from && pattern.test(l))
      expect(at, `"${shown}" in what \`${step.command}\` printed:\n${r.out}`).toBeGreaterThanOrEqual(0)
      from = at + 1
    }
    const fails = step.output.some((l) => l.startsWith('fleet: '))
    expect(r.code !== 0, `exit code of \`${step.command}\`: ${r.code}\n${r.out}`).toBe(fails)
  }
}

async function checkShell(block: Block): Promise<void> {
  const knownEnv = new Set([...Object.values(settings), ...Object.values(app.settings)].map((s) => s.env))
  const commands = block.text
    .split('\n')
    .map((line) => ({ line, ...shellWords(line) }))
    .filter((c) => c.words.length > 0)
    .map((c) => {
      const args = fleetArgs(c.words)
      if (!args) return { ...c, args, options: undefined, help: undefined }
      const options = longOptions(args.slice(1))
      const appArg = options.get('app')
      // The help of every command of the block is asked for at once (each is a Node start).
      const help = fleet([args[0], ...(typeof appArg === 'string' ? ['--app', appArg] : []), '--help'])
      return { ...c, args, options, help }
    })
  for (const { line, env, words, args, options, help } of commands) {
    if (!args || !options || !help) {
      expect(words.slice(0, 2), `"${line}": npm run <script> or a Fleet command`).toEqual(['npm', 'run'])
      expect(Object.keys(scripts), `"${line}": a script of package.json`).toContain(words[2])
      expect(words.length, `"${line}"`).toBe(3)
      continue
    }
    const command = args[0]
    const { code, out } = await help
    expect(code, `${command} --help:\n${out}`).toBe(0)
    for (const name of options.keys())
      expect(out, `"${line}": ${command} has --${name}`).toMatch(new RegExp(`\\s--${name}[\\s<[]`))
    // The command loads the guide's app: its flags for this command are listed.
    for (const spec of Object.values(app.settings))
      if (spec.flag && spec.commands?.includes(command))
        expect(out, line).toContain(`--${flagOf(spec, command)} `)
    for (const name of Object.keys(env)) expect(knownEnv, `"${line}": ${name} is a setting`).toContain(name)
    const opts = Object.fromEntries(
      [...options].map(([k, v]) => [k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), v]),
    )
    expect(() => configFromOptions(command, opts, { env, extra: app.settings }), line).not.toThrow()
  }
}

const checks: Record<string, (b: Block) => Promise<void>> = {
  ts: checkTypeScript,
  http: checkHttp,
  console: checkConsole,
  sh: checkShell,
}

describe('docs/guide.md', () => {
  it('has code blocks of kinds this test runs', () => {
    expect(blocks.length).toBeGreaterThan(10)
    for (const b of blocks) expect(Object.keys(checks), `the block at line ${b.line}`).toContain(b.lang)
  })

  for (const block of blocks) {
    const first = block.text.split('\n').find((l) => l.trim() !== '') ?? ''
    it(`line ${block.line}, ${block.lang}: ${first.slice(0, 70)}`, async () => {
      const check = checks[block.lang]
      if (!check) throw new Error(`no way to run a ${block.lang || 'plain'} block`)
      await check(block)
    }, 60_000)
  }
})
