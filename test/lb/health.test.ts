/** Active health checks, passive ejection (growing, capped) and slow start, through a real LB. */
import { afterEach, describe, expect, it } from 'vitest'
import type { LoadBalancer } from '../../src/lb/index.js'
import { type Backend, get, raw, startBackend, startLb, until } from './helpers.js'

describe('load balancer: health', () => {
  const backends: Backend[] = []
  let lb: LoadBalancer | undefined

  afterEach(async () => {
    await lb?.close()
    lb = undefined
    await Promise.all(backends.splice(0).map((b) => b.close()))
  })

  it('active checks of /readyz mark an upstream down after `fall` failures and up after `rise` passes', async () => {
    const a = await startBackend('a')
    const b = await startBackend('b')
    backends.push(a, b)
    lb = await startLb({ upstreams: [a.url, b.url], healthFall: 2, healthRise: 2, healthIntervalMs: 50 })
    const ua = lb.upstreams.get(a.url)!
    a.ready = 503
    await until(() => !ua.healthy, 3000, 'a down')
    a.hits = 0
    for (let i = 0; i < 20; i++) expect(JSON.parse((await get(lb.port, '/')).body).backend).toBe('b')
    expect(a.hits).toBe(0)
    a.ready = 200
    await until(() => ua.healthy, 3000, 'a up')
    const seen = new Set<string>()
    for (let i = 0; i < 30; i++) seen.add(JSON.parse((await get(lb.port, '/')).body).backend as string)
    expect(seen.has('a')).toBe(true)
  })

  it('an upstream whose process is gone is marked down by the checks', async () => {
    const a = await startBackend('a')
    const b = await startBackend('b')
    backends.push(b)
    lb = await startLb({ upstreams: [a.url, b.url], healthFall: 1, healthIntervalMs: 50 })
    await a.close()
    await until(() => !lb!.upstreams.get(a.url)!.healthy, 3000, 'a down')
    const status = JSON.parse((await get(lb.adminPort, '/status')).body) as {
      upstreams: { url: string; eligible: boolean }[]
    }
    expect(status.upstreams.find((u) => u.url === a.url)?.eligible).toBe(false)
  })

  it('passive ejection after consecutive gateway failures (503), with a growing ejection time and slow start after it', async () => {
    let t = 1_000_000
    const failing = await startBackend('failing', (req, res) => {
      req.resume()
      res.writeHead(503).end('overloaded')
    })
    const good = await startBackend('good')
    backends.push(failing, good)
    lb = await startLb({
      upstreams: [failing.url, good.url],
      strategy: 'round-robin',
      ejectFailures: 3,
      ejectTimeMs: 10_000,
      ejectMaxTimeMs: 15_000,
      ejectMaxPercent: 50,
      healthIntervalMs: 60_000,
      now: () => t,
    })
    const uf = lb.upstreams.get(failing.url)!
    for (let i = 0; i < 6; i++) await get(lb.port, '/')
    expect(uf.ejectedUntil - t).toBe(10_000)
    expect(failing.hits).toBe(3)
    for (let i = 0; i < 10; i++) expect((await get(lb.port, '/')).status).toBe(200)
    expect(failing.hits).toBe(3)
    const metrics = (await get(lb.adminPort, '/metrics')).body
    expect(metrics).toMatch(/fleet_lb_ejections_total\{upstream="http:\/\/127\.0\.0\.1:\d+"\} 1/)
    t += 10_001
    for (let i = 0; i < 12; i++) await get(lb.port, '/')
    expect(failing.hits).toBe(6)
    expect(uf.ejections).toBe(2)
    expect(uf.ejectedUntil - t).toBe(15_000) // 20 s doubled, capped at 15 s
  })

  it('a client cannot get an upstream ejected: 500s, 4xx, OPTIONS * and a bad request target never count', async () => {
    // The app answers 500 to this client's input (as a NUL byte once did) and 400 to another: both are answers.
    const app = await startBackend('app', (req, res) => {
      req.resume()
      res.writeHead(req.url?.includes('%00') ? 500 : 400).end('no')
    })
    backends.push(app)
    lb = await startLb({
      upstreams: [app.url],
      ejectFailures: 3,
      ejectMaxPercent: 100,
      healthIntervalMs: 60_000,
    })
    const u = lb.upstreams.get(app.url)!
    for (let i = 0; i < 10; i++) expect((await get(lb.port, '/search?q=%00')).status).toBe(500)
    for (let i = 0; i < 10; i++) expect((await get(lb.port, '/search?q=x')).status).toBe(400)
    for (let i = 0; i < 10; i++) {
      const star = await raw(lb.port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n')
      expect(star).toMatch(/^HTTP\/1\.1 204 /)
      expect(star).toMatch(/allow: GET, HEAD, POST/i)
      const bad = await raw(lb.port, 'GET nonsense HTTP/1.1\r\nHost: x\r\n\r\n')
      expect(bad).toMatch(/^HTTP\/1\.1 400 /)
      expect(bad).toContain('FLEET_E_LB_BAD_REQUEST')
      expect(bad).not.toContain(app.url.replace('http://', '')) // no internal address in an answer
    }
    expect(u.ejections).toBe(0)
    expect(u.consecutiveFailures).toBe(0)
    expect(u.eligible(Date.now())).toBe(true)
    // An absolute-form target (RFC 9112 3.2.2) is forwarded in origin form.
    const abs = await raw(lb.port, 'GET http://x/search?q=y HTTP/1.1\r\nHost: x\r\n\r\n')
    expect(abs).toMatch(/^HTTP\/1\.1 400 /)
    expect(app.hits).toBe(21)
  })

  it('outlier detection: a server that answers 500 to everyone is ejected; 500s a client causes on all are not', async () => {
    let t = 1_000_000
    const broken = await startBackend('broken', (req, res) => {
      req.resume()
      res.writeHead(500).end('bug')
    })
    const fine = await startBackend('fine', (req, res) => {
      req.resume()
      res.writeHead(req.url?.includes('%00') ? 500 : 200).end('ok')
    })
    const also = await startBackend('also', (req, res) => {
      req.resume()
      res.writeHead(req.url?.includes('%00') ? 500 : 200).end('ok')
    })
    backends.push(broken, fine, also)
    lb = await startLb({
      upstreams: [broken.url, fine.url, also.url],
      strategy: 'round-robin',
      ejectFailures: 0, // consecutive-failure ejection off: only outlier detection acts here
      ejectMaxPercent: 50,
      healthIntervalMs: 60_000,
      now: () => t,
    })
    const ub = lb.upstreams.get(broken.url)!
    // A window of client-caused 500s on the two good servers too: shares 100%, 100%, 100%: nobody stands out.
    for (let i = 0; i < 90; i++) await get(lb.port, '/search?q=%00')
    t += 10_001
    await get(lb.port, '/search?q=%00')
    expect(lb.upstreams.all().map((u) => u.ejections)).toEqual([0, 0, 0])
    // A window of ordinary requests: only the broken one answers 500.
    for (let i = 0; i < 90; i++) await get(lb.port, '/ok')
    t += 10_001
    await get(lb.port, '/ok')
    expect(ub.ejections).toBe(1)
    expect(ub.ejectedUntil).toBeGreaterThan(t)
    expect(lb.upstreams.get(fine.url)?.ejections).toBe(0)
    const hits = broken.hits
    for (let i = 0; i < 10; i++) expect((await get(lb.port, '/ok')).status).toBe(200)
    expect(broken.hits).toBe(hits)
  })

  it('never ejects more than the allowed share of upstreams', async () => {
    const handler = (_req: unknown, res: { writeHead(n: number): { end(): void } }) =>
      res.writeHead(503).end()
    const a = await startBackend('a', handler as never)
    const b = await startBackend('b', handler as never)
    backends.push(a, b)
    lb = await startLb({
      upstreams: [a.url, b.url],
      ejectFailures: 2,
      ejectMaxPercent: 50,
      healthIntervalMs: 60_000,
    })
    for (let i = 0; i < 20; i++) expect((await get(lb.port, '/')).status).toBe(503)
    const ejected = lb.upstreams.all().filter((u) => u.ejected)
    expect(ejected.length).toBe(1)
    expect(a.hits + b.hits).toBe(20)
  })

  it('slow start: an upstream that comes back gets a small share first, then its full share', async () => {
    let t = 5_000_000
    const a = await startBackend('a')
    const b = await startBackend('b')
    backends.push(a, b)
    lb = await startLb({
      upstreams: [a.url, b.url],
      slowStartMs: 60_000,
      healthFall: 1,
      healthRise: 1,
      healthIntervalMs: 30,
      now: () => t,
    })
    t += 60_000
    const ub = lb.upstreams.get(b.url)!
    b.ready = 503
    await until(() => !ub.healthy, 3000, 'b down')
    b.ready = 200
    await until(() => ub.healthy, 3000, 'b up')
    expect(ub.effectiveWeight(t)).toBeCloseTo(0.1)
    b.hits = 0
    for (let i = 0; i < 300; i++) await get(lb.port, '/')
    expect(b.hits).toBeLessThan(75)
    expect(b.hits).toBeGreaterThan(0)
    t += 60_000
    b.hits = 0
    for (let i = 0; i < 300; i++) await get(lb.port, '/')
    expect(b.hits).toBeGreaterThan(105)
  })
})
