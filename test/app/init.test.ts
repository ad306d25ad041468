/**
 * From an empty folder to your own service, as the README says: `fleet init my-app` writes the project and
 * installs it (npm, from this checkout: `file:`), its own `npm test` passes on servers it starts itself, its
 * `npm run typecheck` passes, and `fleet dev` (the project's bin) serves it and reloads a saved route file,
 * survives a save that does not compile, and stops cleanly. Prints the figures of each step.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { scratchUpEnv } from '../../src/stack/scratch.js'
import { waitFor } from '../jobs/support.js'
import { dropIsolated, isolatedEnv } from '../support/context.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))
const cli = path.join(root, 'dist/cli.js')

let tmp: string
let project: string
/** This process's environment without Fleet's settings or store URLs: what a new user's shell has. */
let cleanEnv: Record<string, string>
const isolated = isolatedEnv()

/** Runs a command; resolves with its exit code and output (never rejects). */
async function sh(
  file: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string>; timeout?: number },
): Promise<{ code: number; out: string; ms: number }> {
  const t0 = Date.now()
  try {
    const r = await run(file, args, {
      cwd: options.cwd,
      env: options.env ?? cleanEnv,
      timeout: options.timeout,
    })
    return { code: 0, out: r.stdout + r.stderr, ms: Date.now() - t0 }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, out: `${e.stdout}${e.stderr}`, ms: Date.now() - t0 }
  }
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-init-'))
  await fs.chmod(tmp, 0o755) // the embedded PostgreSQL of the project's test runs as `postgres`
  project = path.join(tmp, 'my-app')
  cleanEnv = Object.fromEntries(
    Object.entries(await scratchUpEnv(tmp)).filter(([k]) => !k.startsWith('FLEET_')),
  ) as Record<string, string>
})

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true })
  await dropIsolated(isolated)
})

describe('fleet init', () => {
  it('refuses a folder with files in it, and a name that is no app name, touching nothing', async () => {
    const full = path.join(tmp, 'full')
    await fs.mkdir(full)
    await fs.writeFile(path.join(full, 'notes.txt'), 'mine\n')
    const r = await sh(process.execPath, [cli, 'init', full], { cwd: tmp })
    expect(r.code).toBe(1)
    expect(r.out).toContain('is not empty (notes.txt): give a new folder')
    expect(r.out).toContain('[FLEET_E_INIT_FOLDER_NOT_EMPTY]')
    expect(await fs.readdir(full)).toEqual(['notes.txt'])

    const bad = await sh(process.execPath, [cli, 'init', path.join(tmp, 'x'), '--name', 'Bad_Name'], {
      cwd: tmp,
    })
    expect(bad.code).toBe(1)
    expect(bad.out).toContain('[FLEET_E_INIT_NAME_INVALID]')
    await expect(fs.stat(path.join(tmp, 'x'))).rejects.toThrow()
  })

  it('writes a project that installs, whose own tests pass on servers they start, and that type-checks', async () => {
    const init = await sh(process.execPath, [cli, 'init', 'my-app'], { cwd: tmp, timeout: 240_000 })
    expect(init.code, init.out).toBe(0)
    expect(init.out).toContain(`(Fleet: file:${root.replace(/\/$/, '')})`)
    expect(init.out).toContain('cd my-app')
    const pkg = JSON.parse(await fs.readFile(path.join(project, 'package.json'), 'utf8'))
    expect(pkg).toMatchObject({
      name: 'my-app',
      type: 'module',
      scripts: { dev: 'fleet dev', start: 'fleet up' },
    })
    // No DATABASE_URL, no running stack: the project's test starts an embedded PostgreSQL and a redis-server.
    const test = await sh('npm', ['test'], { cwd: project, timeout: 240_000 })
    expect(test.out).toMatch(/# pass 3\n/)
    expect(test.out).toMatch(/# fail 0\n/)
    expect(test.code, test.out).toBe(0)
    const types = await sh('npm', ['run', 'typecheck'], { cwd: project, timeout: 120_000 })
    expect(types.code, types.out).toBe(0)
    console.log(
      `fleet init with npm install: ${init.ms} ms; npm test: ${test.ms} ms; npm run typecheck: ${types.ms} ms`,
    )
  }, 600_000)
})

describe('fleet dev', () => {
  let dev: ChildProcess | undefined
  let output = ''
  let base = ''

  afterAll(async () => {
    if (dev?.exitCode === null) {
      dev.kill('SIGKILL')
    }
  })

  const answer = async () => {
    const res = await fetch(`${base}/`).catch(() => undefined)
    return res?.status === 200 ? ((await res.json()) as { try: string[] }) : undefined
  }

  it('serves the project and reloads a saved route file; a save that does not compile leaves a message', async () => {
    expect(project, 'the project of the fleet init test').toBeTruthy()
    // The suite's PostgreSQL and Redis, on a schema and prefix of this test; ports of its own.
    const env: Record<string, string> = {
      ...(await scratchUpEnv(tmp)),
      ...isolated,
      FLEET_DATA_DIR: path.join(project, 'data'),
    }
    base = `http://127.0.0.1:${env.FLEET_PORT}`
    dev = spawn(path.join(project, 'node_modules/.bin/fleet'), ['dev'], { cwd: project, env })
    for (const s of [dev.stdout, dev.stderr]) s?.on('data', (c: Buffer) => (output += c.toString()))
    const t0 = Date.now()
    await waitFor(
      'fleet dev is up',
      async () => (output.includes('fleet is up in') ? true : undefined),
      120_000,
    )
    expect(output).toContain(`saving a source file in ${project} reloads the web servers and workers`)
    expect(output).toMatch(/starting web-1, worker-1, lb-1/) // one of each by default
    expect((await answer())?.try[0]).toBe('GET /notes')
    const upMs = Date.now() - t0

    const app = path.join(project, 'app.ts')
    const source = await fs.readFile(app, 'utf8')
    const t1 = Date.now()
    await fs.writeFile(app, source.replace("'GET /notes'", "'GET /notes (saved)'"))
    await waitFor(
      'the new answer',
      async () => ((await answer())?.try[0] === 'GET /notes (saved)' ? true : undefined),
      60_000,
    )
    const reloadMs = Date.now() - t1
    await waitFor(
      'the reload ends',
      async () => (output.includes('dev: reloaded in') ? true : undefined),
      60_000,
    )

    // A save that does not compile: the reload fails with a pointer to the logs; the next good save recovers.
    await fs.writeFile(app, source.replace("'GET /notes'", "'GET /notes' ((("))
    await waitFor(
      'the failed reload',
      async () => (output.includes('dev: reload failed:') ? true : undefined),
      90_000,
    )
    await fs.writeFile(app, source.replace("'GET /notes'", "'GET /notes (fixed)'"))
    await waitFor(
      'the fixed answer',
      async () => ((await answer())?.try[0] === 'GET /notes (fixed)' ? true : undefined),
      90_000,
    )

    dev.kill('SIGINT')
    const code = await new Promise<number | null>((resolve) => {
      if (dev?.exitCode !== null) resolve(dev?.exitCode ?? null)
      else dev.once('exit', (c) => resolve(c))
    })
    expect(code, output.slice(-2000)).toBe(0)
    console.log(`fleet dev: first 200 after ${upMs} ms; save -> new answer ${reloadMs} ms`)
  }, 300_000)
})
