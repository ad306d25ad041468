/**
 * The layers of .dependency-cruiser.cjs hold on the real tree (`npm run lint` runs the same check), and the
 * check has teeth: each kind of import the issue found is built in a scratch tree and must be refused.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../', import.meta.url))
const depcruise = path.join(root, 'node_modules/.bin/depcruise')
const config = path.join(root, '.dependency-cruiser.cjs')

/** Runs the check in `cwd` over `dirs`; its exit code and report. */
async function cruise(cwd: string, dirs: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(depcruise, [...dirs, '--config', config], { cwd })
    return { code: 0, out: r.stdout + r.stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, out: e.stdout + e.stderr }
  }
}

let scratch: string

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-layers-'))
  await fs.writeFile(
    path.join(scratch, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext' } }),
  )
})

afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true })
})

/** Writes `files` (path -> source) under a fresh folder of the scratch tree; returns that folder. */
async function tree(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(scratch, name)
  // The config reads ./tsconfig.json of the folder it runs in.
  files = { 'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext' } }), ...files }
  for (const [file, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, file)), { recursive: true })
    await fs.writeFile(path.join(dir, file), text)
  }
  return dir
}

describe('layers', () => {
  it('hold on src/, apps/ and examples/', async () => {
    const r = await cruise(root, ['src', 'apps', 'examples'])
    expect(r.out).toContain('no dependency violations found')
    expect(r.code).toBe(0)
  }, 60_000)

  const breaches: [string, Record<string, string>][] = [
    [
      'lb-is-a-leaf',
      { 'src/lb/admin.ts': "import '../dashboard/index.js'\n", 'src/dashboard/index.ts': 'export {}\n' },
    ],
    ['cli-is-the-top', { 'src/lb/main.ts': "import '../cli/lb.js'\n", 'src/cli/lb.ts': 'export {}\n' }],
    [
      'jobs-below-the-web',
      { 'src/jobs/worker-process.ts': "import '../web/main.js'\n", 'src/web/main.ts': 'export {}\n' },
    ],
    [
      'supervisor-without-the-runtime',
      { 'src/stack/up.ts': "import '../app/runtime.js'\n", 'src/app/runtime.ts': 'export {}\n' },
    ],
    [
      'dashboard-does-not-load-the-stack',
      { 'src/dashboard/stores.ts': "import '../stack/control.js'\n", 'src/stack/control.ts': 'export {}\n' },
    ],
    [
      'no-circular',
      { 'src/cache/a.ts': "import './b.js'\nexport const a = 1\n", 'src/cache/b.ts': "import './a.js'\n" },
    ],
  ]
  for (const [rule, files] of breaches) {
    it(`refuses an import that breaks ${rule}`, async () => {
      const dir = await tree(rule, files)
      const r = await cruise(dir, ['src'])
      expect(r.out).toContain(`error ${rule}:`)
      expect(r.code).not.toBe(0)
    }, 60_000)
  }
})
