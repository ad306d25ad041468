import { afterEach, describe, expect, it } from 'vitest'
import type { LoadBalancer } from '../../src/lb/index.js'
import { type Backend, get, startBackend, startLb, until } from './helpers.js'

describe('load balancer: proxying', () => {
  const backends: Backend[] = []
  let lb: LoadBalancer | undefined

  afterEach(async () => {
    await lb?.close()
    lb = undefined
    await Promise.all(backends.splice(0).map((b) => b.close()))
  })

  it('forwards requests over both upstreams and passes status, headers and body', async () => {
    backends.push(await startBackend('a'), await startBackend('b'))
    lb = await startLb({ upstreams: backends.map((b) => b.url) })
    const seen = new Set<string>()
    for (let i = 0; i < 40; i++) {
      const r = await get(lb.port, `/x?i=${i}`)
      expect(r.status).toBe(200)
      const body = JSON.parse(r.body) as { backend: string; url: string }
      expect(body.url).toBe(`/x?i=${i}`)
      seen.add(body.backend)
      expect(r.headers['x-backend']).toBe(body.backend)
    }
    expect([...seen].sort()).toEqual(['a', 'b'])
  })

  it('answers 503 with Retry-After and a JSON code when no upstream is healthy', async () => {
    const a = await startBackend('a')
    backends.push(a)
    a.ready = 503
    // Panic mode off: it would route to the unready upstream instead (test/lb/panic.test.ts).
    lb = await startLb({ upstreams: [a.url], healthFall: 1, panicThreshold: 0 })
    await until(() => !lb!.upstreams.all()[0].healthy, 3000, 'upstream down')
    const r = await get(lb.port, '/')
    expect(r.status).toBe(503)
    expect(r.headers['retry-after']).toMatch(/^\d+$/)
    expect(JSON.parse(r.body).error.code).toBe('FLEET_E_LB_NO_UPSTREAM')
    a.ready = 200
    await until(async () => (await get(lb!.port, '/')).status === 200, 3000, 'upstream up again')
  })

  it('answers 502 with a JSON body when the only upstream refuses connections', async () => {
    const a = await startBackend('a')
    const url = a.url
    await a.close()
    lb = await startLb({ upstreams: [url], retries: 1 })
    const r = await get(lb.port, '/')
    expect(r.status).toBe(502)
    const body = JSON.parse(r.body) as { error: { code: string; requestId: string } }
    expect(body.error.code).toBe('FLEET_E_LB_BAD_GATEWAY')
    expect(body.error.requestId).toBe(r.headers['x-request-id'])
  })

  it('answers 504 when the upstream does not send headers in time', async () => {
    backends.push(await startBackend('slow', () => {}))
    lb = await startLb({ upstreams: [backends[0].url], headersTimeoutMs: 200 })
    const r = await get(lb.port, '/')
    expect(r.status).toBe(504)
    expect(JSON.parse(r.body).error.code).toBe('FLEET_E_LB_UPSTREAM_TIMEOUT')
  })

  it('serves /metrics and /status on the admin port only', async () => {
    backends.push(await startBackend('a'))
    lb = await startLb({ upstreams: [backends[0].url] })
    await get(lb.port, '/')
    const status = JSON.parse((await get(lb.adminPort, '/status')).body) as {
      upstreams: { url: string; healthy: boolean; requests: number }[]
    }
    expect(status.upstreams[0]).toMatchObject({ url: backends[0].url, healthy: true })
    expect(status.upstreams[0].requests).toBeGreaterThanOrEqual(1)
    const metrics = await get(lb.adminPort, '/metrics')
    expect(metrics.body).toMatch(/fleet_lb_requests_total\{code="200"\} [1-9]/)
    // The web servers' own /metrics and /readyz are not served on the public port, however they are spelled.
    const hits = backends[0].hits
    for (const path of [
      '/metrics',
      '/readyz',
      '/METRICS',
      '//metrics',
      '/metrics/',
      '/%6detrics',
      '/a/../metrics',
      '/readyz?x=1',
      '/metrics/x',
    ]) {
      const pub = await get(lb.port, path)
      expect(pub.status, path).toBe(404)
      expect(JSON.parse(pub.body).error.code).toBe('FLEET_E_LB_NOT_FOUND')
    }
    expect(backends[0].hits).toBe(hits)
    expect((await get(lb.port, '/metricsx')).status).toBe(200) // only those paths
    // The admin port on loopback refuses a Host that is not a loopback name (a DNS-rebound page).
    const rebound = await get(lb.adminPort, '/status', { headers: { host: 'evil.example:9090' } })
    expect(rebound.status).toBe(403)
    expect(JSON.parse(rebound.body).error.code).toBe('FLEET_E_LB_ADMIN_FORBIDDEN')
    expect((await get(lb.adminPort, '/status', { headers: { host: 'localhost' } })).status).toBe(200)
    expect(status.upstreams[0].url).toBe(backends[0].url)
  })
})
