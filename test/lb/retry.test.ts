/** Retry rules: what may be sent twice, on which failures, under a budget. */
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { LoadBalancer } from '../../src/lb/index.js'
import { mayRetry } from '../../src/lb/retry.js'
import { RetryBudget } from '../../src/lb/retry-budget.js'
import { type Backend, get, raw, startBackend, startLb, statusOf, TEST_ENGINE, until } from './helpers.js'

describe('retry rules', () => {
  it('retry any method after a connect failure, idempotent ones after a send failure, never after a response', () => {
    const get = { method: 'GET', hasBody: false, replayable: true, idempotencyKey: false }
    const post = { method: 'POST', hasBody: true, replayable: true, idempotencyKey: false }
    expect(mayRetry(get, 'connect')).toBe(true)
    expect(mayRetry(post, 'connect')).toBe(true)
    expect(mayRetry({ ...post, replayable: false }, 'connect')).toBe(true)
    expect(mayRetry(get, 'sent')).toBe(true)
    expect(mayRetry({ ...get, method: 'DELETE' }, 'sent')).toBe(true)
    expect(mayRetry({ ...get, method: 'PATCH' }, 'sent')).toBe(false)
    expect(mayRetry(post, 'sent')).toBe(false)
    // PUT and DELETE are idempotent (RFC 9110): with their body held whole, safe to send again.
    expect(mayRetry({ ...post, method: 'PUT' }, 'sent')).toBe(true)
    expect(mayRetry({ ...post, method: 'PUT', replayable: false }, 'sent')).toBe(false)
    expect(mayRetry({ ...post, method: 'PATCH' }, 'sent')).toBe(false)
    expect(mayRetry({ ...post, idempotencyKey: true }, 'sent')).toBe(true)
    expect(mayRetry({ ...post, idempotencyKey: true, replayable: false }, 'sent')).toBe(false)
    expect(mayRetry(get, 'response')).toBe(false)
  })

  it('budget: a share of recent requests plus a floor per second, refilled as the window slides', () => {
    let t = 1_000_000
    const budget = new RetryBudget(20, 1, () => t)
    for (let i = 0; i < 100; i++) budget.request()
    let granted = 0
    for (let i = 0; i < 100; i++) if (budget.tryRetry()) granted++
    expect(granted).toBe(30) // 20% of 100 + 1/s over the 10 s window
    t += 11_000
    granted = 0
    for (let i = 0; i < 100; i++) if (budget.tryRetry()) granted++
    expect(granted).toBe(10)
  })
})

describe('load balancer: retries', () => {
  const backends: Backend[] = []
  let lb: LoadBalancer | undefined

  afterEach(async () => {
    await lb?.close()
    lb = undefined
    await Promise.all(backends.splice(0).map((b) => b.close()))
  })

  /** A backend that cuts the connection of every request after reading it (no response byte). */
  async function killer(name: string): Promise<Backend> {
    return startBackend(name, (req) => {
      req.resume()
      req.on('end', () => req.socket.destroy())
    })
  }

  it('a GET survives an upstream that dies mid-request', async () => {
    const bad = await killer('bad')
    const good = await startBackend('good')
    backends.push(bad, good)
    lb = await startLb({ upstreams: [bad.url, good.url], ejectFailures: 0, strategy: 'round-robin' })
    for (let i = 0; i < 10; i++) {
      const r = await get(lb.port, '/g')
      expect(r.status).toBe(200)
      expect(JSON.parse(r.body).backend).toBe('good')
    }
    expect(bad.hits).toBeGreaterThan(0)
  })

  it('a GET survives an upstream process killed while requests are in flight', async () => {
    const victim = await startBackend('victim', (req, res) => {
      setTimeout(() => res.end('late'), 5_000).unref()
      req.resume()
    })
    const good = await startBackend('good')
    backends.push(good)
    lb = await startLb({ upstreams: [victim.url, good.url], ejectFailures: 0, strategy: 'round-robin' })
    const pending = Array.from({ length: 6 }, (_, i) => get(lb!.port, `/k${i}`))
    await until(() => victim.hits >= 3, 3000, 'requests in flight on the victim')
    await victim.close()
    const results = await Promise.all(pending)
    for (const r of results) {
      expect(r.status).toBe(200)
      expect(JSON.parse(r.body).backend).toBe('good')
    }
    expect(victim.hits).toBeGreaterThan(0)
  })

  it('a POST without Idempotency-Key is never sent twice', async () => {
    const bad = await killer('bad')
    const good = await startBackend('good')
    backends.push(bad, good)
    lb = await startLb({ upstreams: [bad.url, good.url], ejectFailures: 0, strategy: 'round-robin' })
    let failed = 0
    for (let i = 0; i < 6; i++) {
      const r = await get(lb.port, '/p', { method: 'POST', body: 'order=1' })
      if (r.status === 502) {
        failed++
        expect(JSON.parse(r.body).error.code).toBe('FLEET_E_LB_BAD_GATEWAY')
      } else expect(JSON.parse(r.body).backend).toBe('good')
    }
    expect(bad.hits).toBeGreaterThan(0)
    expect(failed).toBe(bad.hits)
    expect(bad.hits + good.hits).toBe(6)
  })

  it('a POST with Idempotency-Key is retried on another upstream', async () => {
    const bad = await killer('bad')
    const good = await startBackend('good')
    backends.push(bad, good)
    lb = await startLb({ upstreams: [bad.url, good.url], ejectFailures: 0, strategy: 'round-robin' })
    for (let i = 0; i < 6; i++) {
      const r = await get(lb.port, '/p', {
        method: 'POST',
        body: 'order=1',
        headers: { 'idempotency-key': `k${i}` },
      })
      expect(r.status).toBe(200)
      expect(JSON.parse(r.body).bytes).toBe(7)
    }
    expect(bad.hits).toBeGreaterThan(0)
  })

  it('a POST is retried when the connection could not be made', async () => {
    const gone = await startBackend('gone')
    const goneUrl = gone.url
    await gone.close()
    const good = await startBackend('good')
    backends.push(good)
    lb = await startLb({ upstreams: [goneUrl, good.url], ejectFailures: 0, strategy: 'round-robin' })
    for (let i = 0; i < 6; i++) {
      const r = await get(lb.port, '/p', { method: 'POST', body: 'x'.repeat(200_000) })
      expect(r.status).toBe(200)
      expect(JSON.parse(r.body).bytes).toBe(200_000)
    }
    expect(good.hits).toBe(6)
  })

  it('never retries after a response byte went to the client: the client sees a cut response', async () => {
    const half = await startBackend('half', (req, res) => {
      req.resume()
      res.writeHead(200, { 'content-length': '100' })
      res.write('partial')
      setTimeout(() => res.socket?.destroy(), 50)
    })
    const good = await startBackend('good')
    backends.push(half, good)
    lb = await startLb({ upstreams: [half.url], ejectFailures: 0 })
    const out = await raw(lb.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 2000)
    expect(statusOf(out)).toBe(200)
    expect(out).toContain('partial')
    expect(out.match(/HTTP\/1\.1/g)?.length).toBe(1)
    expect(half.hits).toBe(1)
    expect(good.hits).toBe(0)
  })

  it('the keep-alive race: an upstream that closes idle connections without notice fails no GET', async () => {
    // The backend closes each connection right after its response, without `Connection: close`, so the LB
    // keeps meeting sockets that were closed under it.
    let closed = 0
    const rude = await startBackend('rude', (req, res) => {
      req.resume()
      res.end('ok', () =>
        setTimeout(() => {
          req.socket.destroy()
          closed++
        }, 5),
      )
    })
    backends.push(rude)
    lb = await startLb({ upstreams: [rude.url], ejectFailures: 0 })
    for (let i = 0; i < 50; i++) {
      expect((await get(lb.port, `/r${i}`)).status).toBe(200)
      // The next GET goes as soon as the backend closed this one's connection, on the LB's closed socket.
      await until(() => closed === i + 1, 2_000, 'the backend to close the connection')
    }
  })

  it('the retry budget stops a retry storm', async () => {
    const bad = await killer('bad')
    backends.push(bad)
    lb = await startLb({ upstreams: [bad.url], ejectFailures: 0, retries: 3, retryBudgetPercent: 0 })
    for (let i = 0; i < 60; i++) expect((await get(lb.port, '/g')).status).toBe(502)
    if (TEST_ENGINE === 'haproxy') {
      // HAProxy has no budget across requests (docs/load-balancer.md): each request is bounded by `retries`.
      expect(bad.hits).toBe(60 * (1 + 3))
      return
    }
    // With a 0% budget only the floor of 10 retries a second over the window is allowed.
    expect(bad.hits).toBeLessThanOrEqual(60 + 100)
    expect(bad.hits).toBeGreaterThan(60)
    const status = JSON.parse((await get(lb.adminPort, '/status')).body) as { retriesDenied: number }
    expect(status.retriesDenied).toBeGreaterThan(0)
  })

  it('a socket that dies before the request is written is not a reason to fail a GET (raw upstream)', async () => {
    // An upstream that accepts and immediately closes every other connection.
    let n = 0
    const srv = net.createServer((s) => {
      s.on('error', () => {}) // a client (a health check) may reset it
      if (n++ % 2 === 0) {
        s.destroy()
        return
      }
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'))
    })
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
    const port = (srv.address() as net.AddressInfo).port
    lb = await startLb({ upstreams: [`http://127.0.0.1:${port}`], ejectFailures: 0, healthFall: 100 })
    for (let i = 0; i < 10; i++) {
      const r = await get(lb.port, '/')
      expect(r.status).toBe(200)
      expect(r.body).toBe('ok')
    }
    await new Promise((r) => srv.close(r))
  })
})
