/**
 * The HAProxy engine (`--engine haproxy`): a real HAProxy kept in step with Fleet's control plane through
 * its runtime API. Membership from the registry (join, drain, leave) reaches HAProxy without a reload, a
 * reload under load drops no request, Fleet's coded errors and proxy duties hold, and /status, /metrics
 * read HAProxy's view. The suites of the Node engine run on this engine too with FLEET_TEST_LB_ENGINE=haproxy;
 * docs/load-balancer.md ("Engines") lists where the two engines differ.
 */
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { HaproxyLoadBalancer } from '../../src/lb/haproxy/engine.js'
import type { LoadBalancer } from '../../src/lb/index.js'
import { type InstanceState, Registry } from '../../src/registry/registry.js'
import { ensureProgram } from '../../src/stack/programs.js'
import { createTestContext, type TestContext } from '../support/context.js'
import { announceWeb, type Backend, get, startBackend, startLb, until } from './helpers.js'

let haproxyPath: string
beforeAll(() => {
  haproxyPath = ensureProgram({ command: 'haproxy', pkg: 'haproxy', otherwise: 'use --engine node' })
})

describe('load balancer: the haproxy engine', () => {
  let ctx: TestContext
  let registry: Registry
  const backends: Backend[] = []
  let lb: LoadBalancer | undefined

  beforeEach(async () => {
    ctx = await createTestContext({ migrate: false })
    registry = new Registry(ctx.redis, ctx.config.redisPrefix)
  })
  afterEach(async () => {
    await lb?.close()
    lb = undefined
    await Promise.all(backends.splice(0).map((b) => b.close()))
    await ctx.cleanup()
  })

  async function backend(name: string): Promise<Backend> {
    const b = await startBackend(name)
    backends.push(b)
    return b
  }

  const announce = (b: Backend, state: InstanceState) => announceWeb(registry, b, state)

  async function seen(port: number, n: number): Promise<Map<string, number>> {
    const out = new Map<string, number>()
    for (let i = 0; i < n; i++) {
      const r = await get(port, `/s${i}`)
      expect(r.status).toBe(200)
      const name = JSON.parse(r.body).backend as string
      out.set(name, (out.get(name) ?? 0) + 1)
    }
    return out
  }

  it('follows the registry without a reload: a server joins, drains, leaves (times printed)', async () => {
    const a = await backend('a')
    await announce(a, 'ready')
    lb = await startLb({ engine: 'haproxy', haproxyPath, discoveryIntervalMs: 100 }, registry)
    expect([...(await seen(lb.port, 10)).keys()]).toEqual(['a'])
    expect((await statusOf(lb)).upstreams).toHaveLength(1)

    const b = await backend('b')
    let t = Date.now()
    await announce(b, 'ready')
    await until(async () => (await seen(lb!.port, 6)).has('b'), 5000, 'b takes traffic')
    const joinMs = Date.now() - t

    t = Date.now()
    await announce(a, 'draining')
    await until(async () => !(await seen(lb!.port, 6)).has('a'), 5000, 'a gets no new requests')
    const drainMs = Date.now() - t
    expect([...(await seen(lb.port, 20)).keys()]).toEqual(['b'])

    t = Date.now()
    await registry.remove('web', 'a')
    await until(async () => (await statusOf(lb!)).upstreams.length === 1, 5000, 'a removed')
    const leaveMs = Date.now() - t
    const status = await statusOf(lb)
    expect(status.engine).toBe('haproxy')
    expect(status.upstreams.map((u) => u.url)).toEqual([b.url])
    console.log(
      `haproxy engine: join ${joinMs} ms, drain ${drainMs} ms, leave ${leaveMs} ms to traffic following`,
    )
  })

  it('keeps a starting server out until its /readyz passes', async () => {
    const a = await backend('a')
    const s = await backend('s')
    s.ready = 503
    await announce(a, 'ready')
    await announce(s, 'starting')
    lb = await startLb({ engine: 'haproxy', haproxyPath, discoveryIntervalMs: 100 }, registry)
    await until(async () => (await statusOf(lb!)).upstreams.length === 2, 5000, 'both known')
    expect([...(await seen(lb.port, 12)).keys()]).toEqual(['a'])
    s.ready = 200
    await until(async () => (await seen(lb!.port, 6)).has('s'), 5000, 's takes traffic once ready')
  })

  it("answers with Fleet's coded errors and carries the proxy headers", async () => {
    const a = await backend('a')
    lb = await startLb({ engine: 'haproxy', haproxyPath, upstreams: [a.url], maxBodySize: 1000 })
    const ok = await get(lb.port, '/h', {
      headers: { 'x-request-id': 'client-id-1', 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' },
    })
    expect(ok.status).toBe(200)
    const seenHeaders = JSON.parse(ok.body).headers as Record<string, string>
    expect(seenHeaders['x-request-id']).toBe('client-id-1')
    expect(seenHeaders['x-forwarded-for']).toBe('127.0.0.1') // an untrusted client's claim is dropped
    expect(seenHeaders['x-forwarded-proto']).toBe('http')
    expect(seenHeaders.via).toMatch(/^1\.1 /)
    expect(ok.headers['x-request-id']).toBe('client-id-1')

    const created = await get(lb.port, '/h', { headers: { 'x-request-id': 'bad id with spaces' } })
    expect(created.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-\d+$/)

    const big = await get(lb.port, '/b', { method: 'POST', body: 'x'.repeat(5000) })
    expect(big.status).toBe(413)
    expect(JSON.parse(big.body).error.code).toBe('FLEET_E_LB_BODY_TOO_LARGE')
    const internal = await get(lb.port, '/ReadyZ/')
    expect(internal.status).toBe(404)
    expect(JSON.parse(internal.body).error.code).toBe('FLEET_E_LB_NOT_FOUND')
    const trace = await get(lb.port, '/t', { method: 'TRACE' })
    expect(trace.status).toBe(405)
    expect(a.hits).toBe(2) // none of the refused requests reached the web server

    await a.close()
    await until(async () => (await statusOf(lb!)).upstreams.every((u) => !u.healthy), 5000, 'a down')
    const none = await get(lb.port, '/n')
    expect(none.status).toBe(503)
    expect(none.headers['retry-after']).toBeDefined()
    expect(JSON.parse(none.body).error).toMatchObject({ code: 'FLEET_E_LB_NO_UPSTREAM' })
  })

  it('sends a POST without Idempotency-Key once; a GET is retried on another server', async () => {
    let posts = 0
    const rude = await startBackend('rude', (req) => {
      if (req.method === 'POST') posts++
      req.socket.destroy()
    })
    backends.push(rude)
    const good = await backend('good')
    lb = await startLb({
      engine: 'haproxy',
      haproxyPath,
      upstreams: [rude.url, good.url],
      strategy: 'round-robin',
      ejectFailures: 0,
    })
    for (let i = 0; i < 6; i++) expect((await get(lb.port, `/g${i}`)).status).toBe(200)
    const statuses: number[] = []
    for (let i = 0; i < 6; i++)
      statuses.push((await get(lb.port, '/p', { method: 'POST', body: '{}' })).status)
    expect(posts).toBe(statuses.filter((s) => s === 502).length) // each failed POST reached rude once
    expect(statuses.filter((s) => s === 502).length).toBeGreaterThan(0)
  })

  it('reloads under load without failing a request; /metrics has both Fleet and HAProxy figures', async () => {
    const a = await backend('a')
    const b = await backend('b')
    const hx = (await startLb({
      engine: 'haproxy',
      haproxyPath,
      upstreams: [a.url, b.url],
    })) as HaproxyLoadBalancer
    lb = hx
    let stop = false
    const failures: string[] = []
    let ok = 0
    const load = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const r = await get(hx.port, '/l').catch((e: Error) => ({ status: 0, body: e.message }))
        if (r.status === 200) ok++
        else failures.push(`${r.status} ${r.body.slice(0, 80)}`)
      }
    })
    await until(() => ok > 50, 5000, 'load running')
    await hx.reload()
    await hx.reload()
    const after = ok
    await until(() => ok > after + 50, 5000, 'load after the reloads')
    stop = true
    await Promise.all(load)
    expect(failures).toEqual([])

    const metrics = await fetch(`http://127.0.0.1:${hx.adminPort}/metrics`).then((r) => r.text())
    expect(metrics).toMatch(/^fleet_lb_requests_total\{code="2xx"\} \d+/m)
    expect(metrics).toMatch(/^haproxy_frontend_http_requests_total\{proxy="public"\} \d+/m)
  })

  it('leaves no HAProxy process or file behind when closed', async () => {
    const a = await backend('a')
    expect(ownedFolders()).toEqual([])
    lb = await startLb({ engine: 'haproxy', haproxyPath, upstreams: [a.url] })
    const [dir] = ownedFolders()
    expect(dir).toBeDefined()
    expect(haproxyProcesses(dir as string)).not.toHaveLength(0)
    await lb.close()
    lb = undefined
    expect(ownedFolders()).toEqual([])
    expect(haproxyProcesses(dir as string)).toEqual([])
  })

  it('a start that fails (admin port taken, certificate unreadable) leaves no folder and no HAProxy behind', async () => {
    const a = await backend('a')
    expect(ownedFolders()).toEqual([])
    const held = net.createServer()
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', r))
    const adminPort = (held.address() as net.AddressInfo).port
    try {
      await expect(
        startLb({ engine: 'haproxy', haproxyPath, upstreams: [a.url], adminPort }),
      ).rejects.toMatchObject({
        code: 'FLEET_E_STACK_PORT_IN_USE',
      })
    } finally {
      held.close()
    }
    expect(ownedFolders()).toEqual([])
    const tls = { certFile: '/nonexistent/fleet-cert.pem', keyFile: '/nonexistent/fleet-key.pem' }
    await expect(startLb({ engine: 'haproxy', haproxyPath, upstreams: [a.url], tls })).rejects.toMatchObject({
      code: 'FLEET_E_CONFIG_MISSING',
    })
    expect(ownedFolders()).toEqual([])
    // The HAProxy started before the admin port failed is gone with its folder: no process names a folder
    // that no longer exists.
    await until(() => orphanHaproxies().length === 0, 5000, 'no HAProxy without its folder')
  })
})

async function statusOf(lb: LoadBalancer): Promise<{
  engine: string
  upstreams: { url: string; healthy: boolean; draining: boolean }[]
}> {
  const res = await fetch(`http://127.0.0.1:${lb.adminPort}/status`)
  return (await res.json()) as Awaited<ReturnType<typeof statusOf>>
}

/** The pids of processes whose command line names `dir` (the HAProxy of one engine). */
/**
 * The engine folders in the temporary folder that this process's engines own (their `owner` file names its
 * pid). Test files run in their own processes (pool: forks), so other suites' engines are not counted.
 */
function ownedFolders(): string[] {
  return fs
    .readdirSync(os.tmpdir())
    .filter((f) => f.startsWith('fleet-haproxy-'))
    .filter((f) => {
      try {
        return fs.readFileSync(path.join(os.tmpdir(), f, 'owner'), 'utf8') === String(process.pid)
      } catch {
        return false
      }
    })
}

/** Pids of the processes whose command line `matches`. */
function processesWhere(matches: (cmdline: string) => boolean): number[] {
  const pids: number[] = []
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      if (matches(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8'))) pids.push(Number(p))
    } catch {}
  }
  return pids
}

/** HAProxy processes whose command line names an engine folder that no longer exists. */
function orphanHaproxies(): number[] {
  return processesWhere((cmdline) => {
    const dir = /(\S*fleet-haproxy-[^/\s\0]+)/.exec(cmdline)?.[1]
    return dir !== undefined && !fs.existsSync(dir)
  })
}

function haproxyProcesses(dir: string): number[] {
  return processesWhere((cmdline) => cmdline.includes(dir))
}
