/**
 * Panic mode (anchor: Envoy's healthy panic threshold): when fewer than FLEET_LB_PANIC_THRESHOLD percent of
 * the upstreams are healthy, the LB routes over all of them (not draining) instead of answering 503 for
 * everything; `/status` and `fleet_lb_panic` show it; it ends when enough are healthy again.
 * Real backends and a real LB on loopback.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { LoadBalancer } from '../../src/lb/index.js'
import { type Backend, get, startBackend, startLb, until } from './helpers.js'

describe('load balancer: panic mode', () => {
  let lb: LoadBalancer | undefined
  const backends: Backend[] = []
  afterEach(async () => {
    await lb?.close()
    lb = undefined
    for (const b of backends.splice(0)) await b.close()
  })

  const status = async () => JSON.parse((await get(lb!.adminPort, '/status')).body) as { panic: boolean }

  it('routes over every upstream when too few are healthy, and stops when enough are back', async () => {
    for (const n of ['a', 'b', 'c']) backends.push(await startBackend(n))
    const [a, b, c] = backends
    lb = await startLb({ upstreams: backends.map((x) => x.url), healthFall: 1, healthRise: 1 })
    await until(() => lb!.upstreams.all().every((u) => u.healthy), 3000, 'all healthy')

    // One of three down (67% healthy, over 50%): no panic, the down one gets nothing.
    b.ready = 503
    await until(() => !lb!.upstreams.get(new URL(b.url).origin)?.healthy, 3000, 'b down')
    for (let i = 0; i < 30; i++) expect((await get(lb.port, '/')).status).toBe(200)
    expect(b.hits).toBe(0)
    expect((await status()).panic).toBe(false)

    // Two of three down (33%): panic, every upstream takes requests again.
    c.ready = 503
    await until(() => !lb!.upstreams.get(new URL(c.url).origin)?.healthy, 3000, 'c down')
    const before = { a: a.hits, b: b.hits, c: c.hits }
    for (let i = 0; i < 60; i++) expect((await get(lb.port, '/')).status).toBe(200)
    expect(b.hits).toBeGreaterThan(before.b)
    expect(c.hits).toBeGreaterThan(before.c)
    expect((await status()).panic).toBe(true)
    expect((await get(lb.adminPort, '/metrics')).body).toMatch(/^fleet_lb_panic 1$/m)

    // Back to two of three: panic over, the down one gets nothing again.
    c.ready = 200
    await until(() => lb!.upstreams.get(new URL(c.url).origin)?.healthy === true, 3000, 'c up')
    const bHits = b.hits
    for (let i = 0; i < 30; i++) expect((await get(lb.port, '/')).status).toBe(200)
    expect(b.hits).toBe(bHits)
    expect((await status()).panic).toBe(false)
    expect((await get(lb.adminPort, '/metrics')).body).toMatch(/^fleet_lb_panic 0$/m)
  })

  it('with the threshold at 0, never panics: no healthy upstream is a 503', async () => {
    const a = await startBackend('a')
    backends.push(a)
    lb = await startLb({ upstreams: [a.url], healthFall: 1, panicThreshold: 0 })
    a.ready = 503
    await until(() => !lb!.upstreams.all()[0].healthy, 3000, 'a down')
    const r = await get(lb.port, '/')
    expect(r.status).toBe(503)
    expect(JSON.parse(r.body).error.code).toBe('FLEET_E_LB_NO_UPSTREAM')
    expect(a.hits).toBe(0)
    expect((await status()).panic).toBe(false)
  })
})
