/**
 * No orphans: `fleet up` SIGKILLed (as the OOM killer or a closed CI job would) leaves no process of its
 * stack running: its reaper stops the LB, the web servers, the worker, and the PostgreSQL and redis-servers
 * it started; a new `fleet up` on the same folder and ports then starts cleanly. Real processes, the
 * embedded PostgreSQL and local redis-servers, on free ports and a fresh data folder.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { scratchUpEnv } from '../../src/stack/scratch.js'
import type { StatusReport } from '../../src/stack/status.js'
import { waitFor } from '../jobs/support.js'
import { alive } from '../support/processes.js'

const run = promisify(execFile)
const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

let dir: string
let env: Record<string, string>
const started: ChildProcess[] = []

function up(): { proc: ChildProcess; output: () => string } {
  const proc = spawn(process.execPath, [cli, 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  started.push(proc)
  let out = ''
  for (const s of [proc.stdout, proc.stderr]) s?.on('data', (c: Buffer) => (out += c.toString()))
  return { proc, output: () => out }
}

async function firstOk(output: () => string): Promise<void> {
  await waitFor(
    'the first 200 through the LB',
    async () =>
      (await fetch(`http://127.0.0.1:${env.FLEET_PORT}/api/categories`).catch(() => undefined))?.status ===
      200
        ? true
        : undefined,
    90_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${output().slice(-3000)}`)
  })
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-orphans-'))
  await fs.chmod(dir, 0o755) // the embedded PostgreSQL runs as `postgres` under root
  env = await scratchUpEnv(dir, {
    FLEET_WEB: '2',
    FLEET_WORKERS: '1',
    FLEET_SEED_PRODUCTS: '100',
    FLEET_SEED_REVIEWS: '100',
  })
})

afterAll(async () => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
  await fs.rm(dir, { recursive: true, force: true })
}, 60_000)

describe('fleet up killed outright', () => {
  it('leaves no process of its stack behind, and the next fleet up on the same folder and ports starts', async () => {
    const first = up()
    await firstOk(first.output)
    const { stdout } = await run(process.execPath, [cli, 'status', '--json'], { env })
    const rows = (JSON.parse(stdout) as StatusReport).rows.filter((r) => r.name !== 'supervisor' && r.pid)
    expect(rows.map((r) => r.name).sort()).toEqual(
      ['lb-1', 'postgres', 'redis-cache', 'redis-store', 'web-1', 'web-2', 'worker-1'].sort(),
    )

    first.proc.kill('SIGKILL')
    const killedAt = Date.now()
    const left = await waitFor(
      'every process of the stack gone',
      async () => (rows.some((r) => alive(r.pid as number)) ? undefined : []),
      20_000,
    ).catch(() => rows.filter((r) => alive(r.pid as number)).map((r) => `${r.name} (${r.pid})`))
    expect(left).toEqual([])
    console.log(`SIGKILL of fleet up: every process of its stack gone after ${Date.now() - killedAt} ms`)
    const reaperLog = await fs.readFile(path.join(env.FLEET_DATA_DIR, 'logs', 'reaper.log'), 'utf8')
    expect(reaperLog).toContain('the supervisor is gone without stopping the stack')

    const second = up()
    await firstOk(second.output)
    expect(second.output()).not.toContain('FLEET_E_STACK_PORT_IN_USE')
    second.proc.kill('SIGTERM')
    const code = await new Promise<number | null>((r) => second.proc.once('exit', (c) => r(c)))
    expect(code).toBe(0)
    // A clean stop releases the reaper: it stops nothing and leaves.
    const after = await fs.readFile(path.join(env.FLEET_DATA_DIR, 'logs', 'reaper.log'), 'utf8')
    expect(after.match(/the supervisor is gone/g)).toHaveLength(1)
  }, 180_000)
})
