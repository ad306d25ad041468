/**
 * `fleet status --fleet` (issue 20): the whole fleet from the registry, without `fleet up`: a real `fleet lb`
 * process, a web server and a worker (in this process), and an entry of another host whose address no
 * longer answers, each with its address, state, health asked now, age and the freshness of its entry.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { type RunningWorker, startWorker } from '../../src/jobs/worker-process.js'
import type { FleetReport } from '../../src/registry/fleet-status.js'
import { Registry } from '../../src/registry/registry.js'
import { freePort } from '../../src/stack/ports.js'
import { type RunningWebServer, startWebServer } from '../../src/web/main.js'
import { createTestContext, type TestContext } from '../support/context.js'
import { waitFor } from '../support/wait.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))

let ctx: TestContext
let web: RunningWebServer
let worker: RunningWorker
let lb: ChildProcess
let lbPorts: { port: number; admin: number }
let dataDir: string
let farUrl: string

beforeAll(async () => {
  ctx = await createTestContext({
    env: { FLEET_REGISTRY_HEARTBEAT: '200ms', FLEET_REGISTRY_TTL: '5s', FLEET_DRAIN_DELAY: '0ms' },
  })
  // A folder with no `fleet up` in it: the status must come from the registry alone.
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-status-'))
  const config = loadConfig({ env: ctx.env })
  web = await startWebServer(loadConfig({ env: { ...ctx.env, FLEET_INSTANCE_ID: 'web-a' } }))
  worker = await startWorker(loadConfig({ env: { ...ctx.env, FLEET_INSTANCE_ID: 'worker-a' } }), [])
  lbPorts = { port: await freePort(), admin: await freePort() }
  lb = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/lb-main.ts',
      '--port',
      String(lbPorts.port),
      '--admin-port',
      String(lbPorts.admin),
      '--name',
      'edge-1',
    ],
    { cwd: root, env: { ...process.env, ...ctx.env, FLEET_LOG_LEVEL: 'warn' }, stdio: 'ignore' },
  )
  const registry = new Registry(ctx.redis, config.redisPrefix)
  await waitFor('the LB in the registry', async () =>
    (await registry.list('lb')).length === 1 ? true : undefined,
  )
  // Another host's web server, still in the registry but gone from the network.
  farUrl = `http://127.0.0.1:${await freePort()}`
  await registry.announce(
    {
      id: 'web-far',
      role: 'web',
      url: farUrl,
      host: 'host-2',
      pid: 4242,
      state: 'ready',
      startedAt: Date.now() - 90_000,
    },
    60_000,
  )
}, 90_000)

afterAll(async () => {
  if (lb && lb.exitCode === null) {
    const exited = new Promise((r) => lb.once('exit', r))
    lb.kill('SIGTERM')
    await exited
  }
  await worker?.stop()
  await web?.stop()
  await ctx?.cleanup()
  await fs.rm(dataDir, { recursive: true, force: true })
})

const status = (args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'status', '--data-dir', dataDir, ...args], {
    cwd: root,
    env: { ...process.env, ...ctx.env },
    timeout: 30_000,
  })

describe('fleet status from the registry', () => {
  it('lists every LB, web server and worker with address, state, health and age, without fleet up', async () => {
    const { stdout } = await status(['--fleet', '--json'])
    const report = JSON.parse(stdout) as FleetReport
    const byId = new Map(report.rows.map((r) => [r.id, r]))
    expect(report.rows.map((r) => r.role)).toEqual(['lb', 'web', 'web', 'worker'])
    expect(byId.get('edge-1')).toMatchObject({
      role: 'lb',
      url: `http://127.0.0.1:${lbPorts.port}`,
      adminUrl: `http://127.0.0.1:${lbPorts.admin}`,
      pid: lb.pid,
      state: 'ready',
      health: 'ok',
    })
    expect(byId.get('web-a')).toMatchObject({ role: 'web', url: web.url, state: 'ready', health: 'ok' })
    expect(byId.get('worker-a')).toMatchObject({ role: 'worker', url: worker.url, health: 'ok' })
    expect(byId.get('web-far')).toMatchObject({
      host: 'host-2',
      health: 'unreachable',
      healthDetail: 'ECONNREFUSED',
    })
    expect(byId.get('web-far')?.ageMs).toBeGreaterThanOrEqual(90_000)
    for (const r of report.rows) {
      expect(r.expiresInMs, r.id).toBeGreaterThan(0)
      expect(r.expiresInMs, r.id).toBeLessThanOrEqual(60_000)
    }
  }, 40_000)

  it('reads the registry by itself when REDIS_URL is set and no fleet up runs here, as a table', async () => {
    const { stdout } = await status([])
    const lines = stdout.split('\n')
    expect(lines[0]).toMatch(/^ROLE\s+NAME\s+HOST\s+PID\s+ADDRESS\s+STATE\s+HEALTH\s+AGE\s+EXPIRES IN$/)
    expect(lines.find((l) => l.startsWith('lb '))).toMatch(
      /^lb\s+edge-1\s+\S+\s+\d+\s+http:\/\/127\.0\.0\.1:\d+ \(admin http:\/\/127\.0\.0\.1:\d+\)\s+ready\s+ok\s/,
    )
    expect(lines.find((l) => l.includes('web-far'))).toMatch(/unreachable \(ECONNREFUSED\)\s+1m3\ds/)
    expect(stdout).toContain('1 load balancer(s), 2 web server(s), 1 worker(s) in the registry')
  }, 40_000)

  it('says what is wrong when the store Redis does not answer', async () => {
    const err = (await status(['--fleet', '--redis-url', 'redis://127.0.0.1:1']).catch(
      (e: unknown) => e,
    )) as {
      code: number
      stderr: string
    }
    expect(err.code).toBe(1)
    expect(err.stderr).toContain('[FLEET_E_REGISTRY_UNAVAILABLE]')
  }, 40_000)
})
