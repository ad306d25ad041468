/** Membership from the registry in a real Redis: discovery, drain, removal, outage, rolling restart. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { LoadBalancer } from '../../src/lb/index.js'
import { connectRedis, type Redis } from '../../src/redis/connect.js'
import { type InstanceState, Registry } from '../../src/registry/registry.js'
import { createTestContext, type TestContext } from '../support/context.js'
import { TcpRelay } from './chaos.js'
import { announceWeb, type Backend, get, startBackend, startLb, until } from './helpers.js'

describe('load balancer: registry discovery', () => {
  let ctx: TestContext
  let registry: Registry
  const backends: Backend[] = []
  let lb: LoadBalancer | undefined
  let extra: Redis | undefined
  let relay: TcpRelay | undefined

  beforeEach(async () => {
    ctx = await createTestContext({ migrate: false })
    registry = new Registry(ctx.redis, ctx.config.redisPrefix)
  })

  afterEach(async () => {
    await lb?.close()
    lb = undefined
    await Promise.all(backends.splice(0).map((b) => b.close()))
    extra?.disconnect()
    extra = undefined
    await relay?.down()
    relay = undefined
    await ctx.cleanup()
  })

  const announce = (b: Backend, state: InstanceState, reg = registry) => announceWeb(reg, b, state)

  async function backendsSeen(port: number, n: number): Promise<Set<string>> {
    const seen = new Set<string>()
    for (let i = 0; i < n; i++) {
      const r = await get(port, '/')
      expect(r.status).toBe(200)
      seen.add(JSON.parse(r.body).backend as string)
    }
    return seen
  }

  it('finds ready and starting web servers; a starting one takes requests once /readyz passes', async () => {
    const a = await startBackend('a')
    const b = await startBackend('b')
    backends.push(a, b)
    b.ready = 503
    await announce(a, 'ready')
    await announce(b, 'starting')
    await registry.announce(
      { id: 'w', role: 'worker', host: 'h', pid: 1, state: 'ready', startedAt: 0 },
      60_000,
    )
    lb = await startLb({ upstreams: [], discoveryIntervalMs: 50, healthIntervalMs: 50 }, registry)
    expect(
      lb.upstreams
        .all()
        .map((u) => u.origin)
        .sort(),
    ).toEqual([a.url, b.url].sort())
    expect([...(await backendsSeen(lb.port, 20))]).toEqual(['a'])
    b.ready = 200
    await until(() => lb!.upstreams.get(b.url)!.healthy, 3000, 'b healthy')
    expect([...(await backendsSeen(lb.port, 30))].sort()).toEqual(['a', 'b'])
  })

  it('answers 503 while the registry lists no web server, and serves once one registers', async () => {
    lb = await startLb({ upstreams: [], discoveryIntervalMs: 50 }, registry)
    expect((await get(lb.port, '/')).status).toBe(503)
    const a = await startBackend('a')
    backends.push(a)
    await announce(a, 'ready')
    await until(async () => (await get(lb!.port, '/')).status === 200, 3000, 'a discovered')
  })

  it('a draining server gets no new requests while its in-flight requests finish; a vanished one is removed', async () => {
    let release: (() => void) | undefined
    const a = await startBackend('a', (req, res) => {
      req.resume()
      if (req.url === '/slow') {
        release = () => res.end('slow done')
        return
      }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ backend: 'a' }))
    })
    const b = await startBackend('b')
    backends.push(a, b)
    await announce(a, 'ready')
    await announce(b, 'ready')
    lb = await startLb({ upstreams: [], discoveryIntervalMs: 50, strategy: 'round-robin' }, registry)
    // Put a slow request on a.
    let slow: Promise<{ status: number; body: string }> | undefined
    for (let i = 0; i < 2 && !release; i++) {
      let answered = false // by b, which answers at once
      slow = get(lb.port, '/slow').finally(() => {
        answered = true
      })
      await until(() => release !== undefined || answered, 2000, 'slow placed')
    }
    expect(release).toBeDefined()
    await announce(a, 'draining')
    await until(() => lb!.upstreams.get(a.url)?.draining === true, 3000, 'a draining')
    a.hits = 0
    expect([...(await backendsSeen(lb.port, 10))]).toEqual(['b'])
    expect(a.hits).toBe(0)
    release?.()
    const done = await slow!
    expect(done).toMatchObject({ status: 200, body: 'slow done' })
    await registry.remove('web', 'a')
    await until(() => lb!.upstreams.get(a.url) === undefined, 3000, 'a removed')
    expect([...(await backendsSeen(lb.port, 5))]).toEqual(['b'])
  })

  it('keeps the last known upstreams while Redis is away, and follows the registry again after', async () => {
    const a = await startBackend('a')
    backends.push(a)
    await announce(a, 'ready')
    const target = new URL(ctx.config.redisUrl!)
    relay = new TcpRelay({ host: target.hostname, port: Number(target.port || 6379) })
    await relay.up()
    extra = connectRedis(`redis://127.0.0.1:${relay.port}`)
    const viaRelay = new Registry(extra, ctx.config.redisPrefix)
    // Discovery's reads of the registry, counted as they start (one at a time: each after the last ended).
    let polls = 0
    const list = viaRelay.list.bind(viaRelay)
    viaRelay.list = (role) => {
      polls++
      return list(role)
    }
    lb = await startLb({ upstreams: [], discoveryIntervalMs: 50 }, viaRelay)
    expect(lb.upstreams.all().length).toBe(1)
    await relay.down()
    await until(
      async () => JSON.parse((await get(lb!.adminPort, '/status')).body).discovery.lastError !== undefined,
      5000,
      'outage noticed',
    )
    for (let i = 0; i < 5; i++) expect((await get(lb.port, '/')).status).toBe(200)
    // The upstreams outlive a failed poll after the one that noticed the outage (each fails at its 1 s timeout).
    const noticed = polls
    await until(() => polls >= noticed + 2, 5000, 'another failed poll')
    for (let i = 0; i < 5; i++) expect((await get(lb.port, '/')).status).toBe(200)
    const b = await startBackend('b')
    backends.push(b)
    await announce(b, 'ready')
    await relay.up()
    await until(() => lb!.upstreams.get(b.url) !== undefined, 8000, 'b discovered after the outage')
    expect(lb.upstreams.all().length).toBe(2)
  })

  it('a rolling restart of every web server under load fails zero requests', async () => {
    const olds = [await startBackend('old1'), await startBackend('old2')]
    backends.push(...olds)
    for (const b of olds) await announce(b, 'ready')
    lb = await startLb({ upstreams: [], discoveryIntervalMs: 50, healthIntervalMs: 50 }, registry)
    let stop = false
    let ok = 0
    const failures: string[] = []
    const load = Array.from({ length: 4 }, async () => {
      while (!stop) {
        try {
          const r = await get(lb!.port, '/work')
          if (r.status === 200) ok++
          else failures.push(`${r.status} ${r.body}`)
        } catch (err) {
          failures.push((err as Error).message)
        }
      }
    })
    // Replace each server in turn, as `fleet restart web` does: start the new one, wait until it is ready,
    // mark the old one draining, give the LB a discovery interval to notice, then stop it gracefully.
    for (const [i, old] of olds.entries()) {
      const fresh = await startBackend(`new${i + 1}`)
      backends.push(fresh)
      await announce(fresh, 'starting')
      await until(() => lb!.upstreams.get(fresh.url)?.healthy === true, 3000, 'new server healthy')
      await announce(fresh, 'ready')
      await announce(old, 'draining')
      await until(() => lb!.upstreams.get(old.url)?.draining === true, 3000, 'old draining')
      old.server.close()
      old.server.closeIdleConnections()
      await until(() => (lb!.upstreams.get(old.url)?.inflight ?? 0) === 0, 3000, 'old drained')
      await registry.remove('web', old.name)
      await until(() => lb!.upstreams.get(old.url) === undefined, 3000, 'old removed')
    }
    stop = true
    await Promise.all(load)
    expect(failures).toEqual([])
    expect(ok).toBeGreaterThan(50)
    expect(
      lb.upstreams
        .all()
        .map((u) => u.origin)
        .sort(),
    ).toEqual(
      backends
        .slice(2)
        .map((b) => b.url)
        .sort(),
    )
  })
})
