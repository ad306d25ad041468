/**
 * Load balancers side by side (issue 20): each has its own name (FLEET_LB_NAME, by default from the host and
 * port) in `Via` on both engines, in /status and in its registry entry; the admin port listens on several
 * addresses or every interface; a standalone `fleet lb` takes `--cache-redis-url`, and without it its
 * dashboard says the cache Redis is not configured instead of showing the store Redis's figures.
 * Real `fleet lb` processes (from the sources), a real Redis and a real HTTP backend.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import http from 'node:http'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Snapshot } from '../../src/dashboard/snapshot.js'
import { Registry } from '../../src/registry/registry.js'
import { freePort } from '../../src/stack/ports.js'
import { createTestContext, type TestContext } from '../support/context.js'
import { waitFor } from '../support/wait.js'
import { type Backend, startBackend } from './helpers.js'

const root = fileURLToPath(new URL('../../', import.meta.url))

interface LbChild {
  child: ChildProcess
  port: number
  adminPort: number
  out: () => string
}

let ctx: TestContext
let backend: Backend
const children: ChildProcess[] = []

/** Starts `fleet lb` with `args` and `env` (on top of the test's isolated env); resolves once it listens. */
async function startLb(args: string[], env: Record<string, string | undefined> = {}): Promise<LbChild> {
  const [port, adminPort] = [await freePort(), await freePort()]
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/lb-main.ts',
      '--port',
      String(port),
      '--admin-port',
      String(adminPort),
      ...args,
    ],
    { cwd: root, env: { ...process.env, ...ctx.env, FLEET_LOG_LEVEL: 'warn', ...env }, stdio: 'pipe' },
  )
  children.push(child)
  let out = ''
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  await waitFor(`fleet lb ${args.join(' ')} to listen`, async () => {
    if (child.exitCode !== null) throw new Error(`fleet lb exited: ${out}`)
    return out.includes(' listening on ') ? true : undefined
  })
  return { child, port, adminPort, out: () => out }
}

async function stop(lb: LbChild): Promise<void> {
  if (lb.child.exitCode !== null) return
  const exited = new Promise((r) => lb.child.once('exit', r))
  lb.child.kill('SIGTERM')
  await exited
}

beforeAll(async () => {
  ctx = await createTestContext({ migrate: false })
  backend = await startBackend('a', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ via: req.headers.via ?? null }))
  })
})

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  await backend?.close()
  await ctx?.cleanup()
})

describe('load balancers side by side', () => {
  it('each names itself (host and port by default) in Via on both engines, in /status and in the registry', async () => {
    const registry = new Registry(ctx.redis, ctx.config.redisPrefix)
    const env = { FLEET_INSTANCE_ID: undefined, FLEET_REGISTRY_HEARTBEAT: '200ms' }
    const node = await startLb(['--upstream', backend.url], env)
    const haproxy = await startLb(['--upstream', backend.url, '--engine', 'haproxy'], env)
    const named = await startLb(['--upstream', backend.url, '--name', 'edge-b'], env)
    try {
      const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '-')
      const expected = [
        [node, `fleet-lb-${host}-${node.port}`],
        [haproxy, `fleet-lb-${host}-${haproxy.port}`],
        [named, 'edge-b'],
      ] as const
      for (const [lb, name] of expected) {
        const res = await fetch(`http://127.0.0.1:${lb.port}/x`)
        expect(res.status).toBe(200)
        expect(res.headers.get('via')).toBe(`1.1 ${name}`)
        expect(((await res.json()) as { via: string }).via).toBe(`1.1 ${name}`)
        const status = (await (await fetch(`http://127.0.0.1:${lb.adminPort}/status`)).json()) as {
          instanceId: string
        }
        expect(status.instanceId).toBe(name)
        expect(lb.out()).toContain(`fleet lb: ${name} listening on`)
      }
      const entries = await waitFor('the three LBs in the registry', async () => {
        const list = await registry.list('lb')
        return list.length === 3 ? list : undefined
      })
      expect(entries.map((e) => e.id).sort()).toEqual(expected.map(([, name]) => name).sort())
      for (const [lb, name] of expected) {
        expect(entries.find((e) => e.id === name)).toMatchObject({
          role: 'lb',
          url: `http://127.0.0.1:${lb.port}`,
          adminUrl: `http://127.0.0.1:${lb.adminPort}`,
          state: 'ready',
          pid: lb.child.pid,
        })
      }
      // A clean stop takes the entry out at once.
      await stop(named)
      expect((await registry.list('lb')).map((e) => e.id)).not.toContain('edge-b')
    } finally {
      await Promise.all([node, haproxy, named].map(stop))
    }
  }, 90_000)

  it('the admin port listens on several addresses, or on every interface', async () => {
    const two = await startLb(['--upstream', backend.url, '--admin-host', '127.0.0.1,127.0.0.2'])
    const every = await startLb(['--upstream', backend.url, '--admin-host', '0.0.0.0'])
    try {
      for (const address of ['127.0.0.1', '127.0.0.2']) {
        const res = await fetch(`http://${address}:${two.adminPort}/status`)
        expect(res.status, address).toBe(200)
      }
      // Loopback only: a Host that names another machine is still refused (DNS rebinding).
      const rebound = await new Promise<number | undefined>((resolve, reject) => {
        http
          .get(
            { host: '127.0.0.2', port: two.adminPort, path: '/status', headers: { host: 'evil.example' } },
            (res) => {
              res.resume()
              resolve(res.statusCode)
            },
          )
          .on('error', reject)
      })
      expect(rebound).toBe(403)
      expect(await fetch(`http://127.0.0.3:${two.adminPort}/status`).catch((e: Error) => e)).toBeInstanceOf(
        Error,
      )
      for (const address of ['127.0.0.1', '127.0.0.3']) {
        const res = await fetch(`http://${address}:${every.adminPort}/status`)
        expect(res.status, address).toBe(200)
      }
    } finally {
      await Promise.all([two, every].map(stop))
    }
  }, 60_000)

  it('a standalone fleet lb shows the cache Redis it is given, and says when there is none', async () => {
    const snapshot = async (lb: LbChild) =>
      waitFor('a dashboard snapshot', async () => {
        const res = await fetch(`http://127.0.0.1:${lb.adminPort}/dashboard/snapshot`)
        return res.ok ? ((await res.json()) as Snapshot) : undefined
      })
    const without = await startLb([], { CACHE_REDIS_URL: undefined })
    const given = await startLb(['--cache-redis-url', ctx.config.redisUrl as string], {
      CACHE_REDIS_URL: undefined,
    })
    try {
      const none = await snapshot(without)
      expect(none.sources.store?.ok).toBe(true)
      expect(none.sources.cacheRedis).toBeNull()
      expect(none.cache.redis).toBeUndefined()
      const page = await (await fetch(`http://127.0.0.1:${without.adminPort}/dashboard/app.js`)).text()
      expect(page).toContain('not configured (fleet lb --cache-redis-url)')
      const some = await snapshot(given)
      expect(some.sources.cacheRedis?.ok).toBe(true)
      expect(some.cache.redis?.usedMemoryBytes).toBeGreaterThan(0)
      // Each dashboard lists the other load balancers of the registry beside itself.
      const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '-')
      const [mine, peer] = [`fleet-lb-${host}-${without.port}`, `fleet-lb-${host}-${given.port}`]
      const lbs = await waitFor('the other LB on the dashboard', async () => {
        const rows = (await snapshot(without)).processes.filter((p) => p.role === 'lb')
        return rows.length === 2 ? rows : undefined
      })
      expect(lbs.map((p) => p.id)).toEqual([mine, peer])
      expect(lbs[1]).toMatchObject({ pid: given.child.pid, health: 'up' })
    } finally {
      await Promise.all([without, given].map(stop))
    }
  }, 60_000)
})
