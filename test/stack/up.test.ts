/**
 * `fleet up` failing fast and clearly, before it starts anything: a taken port (named with its setting),
 * two settings on one port, another `fleet up` on the same data folder (whose socket and pid records it
 * leaves alone). Runs the built CLI.
 */
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ControlServer } from '../../src/stack/control.js'
import { recordPids, stopLeftovers } from '../../src/stack/leftovers.js'
import { freePort } from '../../src/stack/ports.js'
import type { StatusReport } from '../../src/stack/status.js'
import { fleetCommand } from '../../src/stack/up.js'

const run = promisify(execFile)
const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))
const fixture = fileURLToPath(new URL('./fixtures/child.mjs', import.meta.url))

let dir: string
let env: NodeJS.ProcessEnv
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-upfail-'))
  env = { ...process.env }
  for (const k of Object.keys(env)) if (k.startsWith('FLEET_') || k.endsWith('_URL')) delete env[k]
  Object.assign(env, {
    FLEET_DATA_DIR: path.join(dir, 'data'),
    FLEET_PORT: String(await freePort()),
    FLEET_LB_ADMIN_PORT: String(await freePort()),
    FLEET_WEB_BASE_PORT: '0',
    FLEET_PG_PORT: String(await freePort()),
    FLEET_REDIS_PORT: String(await freePort()),
    FLEET_CACHE_REDIS_PORT: String(await freePort()),
  })
})
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true })
})

/** Runs `fleet up`, expecting it to fail; returns its exit code and stderr. */
async function upFails(): Promise<{ code: number; stderr: string; stdout: string }> {
  const err = (await run(process.execPath, [cli, 'up'], { env, timeout: 60_000 }).then(
    () => undefined,
    (e: unknown) => e,
  )) as { code: number; stderr: string; stdout: string } | undefined
  expect(err, 'fleet up should have failed').toBeDefined()
  return { code: err?.code ?? 0, stderr: err?.stderr ?? '', stdout: err?.stdout ?? '' }
}

describe('fleet up fails fast', () => {
  it('names the setting to change when a port is taken, and starts nothing', async () => {
    const blocker = net.createServer()
    await new Promise<void>((r) => blocker.listen(Number(env.FLEET_REDIS_PORT), '127.0.0.1', () => r()))
    try {
      const { code, stderr } = await upFails()
      expect(code).toBe(1)
      expect(stderr).toContain(`port ${env.FLEET_REDIS_PORT} (Redis (store)) is already in use`)
      expect(stderr).toContain('FLEET_REDIS_PORT=<port>')
      expect(stderr).toContain('[FLEET_E_STACK_PORT_IN_USE]')
      expect(existsSync(path.join(dir, 'data', 'postgres'))).toBe(false)
      expect(existsSync(path.join(dir, 'data', 'fleet.sock'))).toBe(false)
    } finally {
      await new Promise((r) => blocker.close(r))
    }
  })

  it('refuses two settings that chose the same port', async () => {
    env.FLEET_LB_ADMIN_PORT = env.FLEET_PORT
    const { code, stderr } = await upFails()
    expect(code).toBe(1)
    expect(stderr).toMatch(/FLEET_LB_ADMIN_PORT chose it too|FLEET_PORT chose it too/)
  })

  it('refuses to start beside another fleet up on the same data folder', async () => {
    await fs.mkdir(path.join(dir, 'data'), { recursive: true })
    const other = new ControlServer(path.join(dir, 'data', 'fleet.sock'), {
      status: () => ({ pid: 1 }) as StatusReport,
      restart: async () => {},
    })
    await other.listen(dir)
    const records = path.join(dir, 'data', 'children.json')
    await recordPids(records, [{ name: 'web-1', pid: process.pid }])
    try {
      const { code, stderr, stdout } = await upFails()
      expect(code).toBe(1)
      expect(stderr).toContain('a fleet up is already running on')
      expect(stderr).toContain('[FLEET_E_STACK_ALREADY_RUNNING]')
      expect(stdout).not.toContain('data kept in') // it stopped nothing: no "stopped after" line
      // What the running stack owns is left as it was (its socket, its pid records).
      expect(existsSync(path.join(dir, 'data', 'fleet.sock'))).toBe(true)
      expect(existsSync(records)).toBe(true)
    } finally {
      await other.close()
    }
  })
})

describe('the banner names the CLI as its reader can run it', () => {
  it('npm run fleet -- in a checkout, npx fleet in a project, fleet on the PATH, else the built CLI', async () => {
    expect(fleetCommand({ npm_lifecycle_event: 'start', npm_package_name: '@fleet-stack/fleet' })).toBe(
      'npm run fleet --',
    )
    expect(fleetCommand({ npm_lifecycle_event: 'start', npm_package_name: 'my-shop' })).toBe('npx fleet')
    const bin = path.join(dir, 'bin')
    await fs.mkdir(bin)
    await fs.writeFile(path.join(bin, 'fleet'), '#!/bin/sh\n', { mode: 0o755 })
    expect(fleetCommand({ PATH: `/nonexistent${path.delimiter}${bin}` })).toBe('fleet')
    expect(fleetCommand({ PATH: '/nonexistent' })).toMatch(/^node \S*cli\.js$/) // the built CLI (from src/ under the tests)
  })
})

describe('leftovers of a killed fleet up', () => {
  it('stops the recorded processes that still run the CLI, and no other', async () => {
    const child = spawn(process.execPath, [fixture], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, CHILD_IGNORE_TERM: '1' },
    })
    const exited = new Promise((r) => child.once('exit', r))
    // Its first line comes after its SIGTERM handler is in place.
    await new Promise((r) => child.stdout?.once('data', r))
    const file = path.join(dir, 'children.json')
    await recordPids(file, [
      { name: 'web-1', pid: child.pid as number },
      { name: 'me', pid: process.pid },
    ])
    const stopped = await stopLeftovers(file, fixture, 500)
    expect(stopped).toEqual([`web-1 (pid ${child.pid})`])
    await exited
    expect(child.signalCode).toBe('SIGKILL')
    expect(existsSync(file)).toBe(false)
    expect(await stopLeftovers(file, fixture)).toEqual([])
  })
})
