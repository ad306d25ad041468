/**
 * Per-try timeout with hedging: a request safe to send twice that an upstream does not answer within the
 * try timeout goes to another upstream too, and the first answer wins (the other try is aborted); a
 * request that is not safe to send twice waits for its one upstream. Real backends on loopback, one of which
 * takes requests and never answers (as a hung process with its health check still passing).
 */
import type http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import type { LoadBalancer } from '../../src/lb/index.js'
import { type Backend, get, startBackend, startLb } from './helpers.js'

describe('load balancer: per-try timeout and hedging', () => {
  const backends: Backend[] = []
  let lb: LoadBalancer | undefined

  afterEach(async () => {
    await lb?.close()
    lb = undefined
    await Promise.all(backends.splice(0).map((b) => b.close()))
  })

  /** Takes every request and never answers; counts the ones whose connection the LB closed. */
  async function hung(name: string): Promise<Backend & { cancelled: number; held: http.ServerResponse[] }> {
    const b = Object.assign(
      await startBackend(name, (req, res) => {
        b.held.push(res)
        req.resume()
        res.on('close', () => {
          if (!res.writableFinished) b.cancelled++
        })
      }),
      { cancelled: 0, held: [] as http.ServerResponse[] },
    )
    return b
  }

  async function retriesOf(stage: string): Promise<number> {
    const metrics = (await get(lb!.adminPort, '/metrics')).body
    const line = metrics.split('\n').find((l) => l.startsWith(`fleet_lb_retries_total{stage="${stage}"`))
    return line ? Number(line.split(' ').pop()) : 0
  }

  it('a GET to a hung upstream is answered by another after about the try timeout; the hung try is aborted', async () => {
    const stuck = await hung('stuck')
    const good = await startBackend('good')
    backends.push(stuck, good)
    lb = await startLb({ upstreams: [stuck.url, good.url], strategy: 'round-robin', tryTimeoutMs: 300 })
    const before = await retriesOf('try-timeout')
    const times: number[] = []
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now()
      const res = await get(lb.port, `/item/${i}`)
      times.push(performance.now() - t0)
      expect(res.status).toBe(200)
      expect(res.headers['x-backend']).toBe('good')
    }
    // Round robin sent two of the four to the hung one first: those took the try timeout, not 30 s.
    expect(stuck.hits).toBeGreaterThanOrEqual(1)
    const slow = times.filter((ms) => ms >= 250)
    expect(slow.length).toBe(stuck.hits)
    for (const ms of slow) expect(ms).toBeLessThan(2_000)
    expect((await retriesOf('try-timeout')) - before).toBe(stuck.hits)
    await expect.poll(() => stuck.cancelled).toBe(stuck.hits) // the losing tries were aborted upstream
    // Each slow loss counts against the hung upstream's passive health (its slowness gets it ejected).
    expect(lb.upstreams.get(stuck.url)?.failures).toBe(stuck.hits)
    expect(lb.upstreams.get(good.url)?.failures).toBe(0)
  })

  it('a PUT with a body (idempotent, held whole) to a hung upstream is hedged, its body whole', async () => {
    // What the multi-host bed found: a cart line (PUT with JSON) to a silent web host waited for it.
    const stuck = await hung('stuck')
    const bodies: string[] = []
    const good = await startBackend('good', (req, res) => {
      let body = ''
      req.setEncoding('utf8').on('data', (c: string) => {
        body += c
      })
      req.on('end', () => {
        bodies.push(`${req.method} ${body}`)
        res.writeHead(200, { 'x-backend': 'good' }).end('ok')
      })
    })
    backends.push(stuck, good)
    lb = await startLb({ upstreams: [stuck.url, good.url], strategy: 'round-robin', tryTimeoutMs: 300 })
    const json = JSON.stringify({ quantity: 2, note: 'x'.repeat(2000) })
    const t0 = performance.now()
    const put = await get(lb.port, '/cart/items/1', {
      method: 'PUT',
      body: json,
      headers: { 'content-type': 'application/json' },
    })
    expect(put.status).toBe(200)
    expect(performance.now() - t0).toBeLessThan(2_000)
    expect(stuck.hits).toBe(1) // round robin tried the hung one first
    expect(bodies).toEqual([`PUT ${json}`])
  })

  it('the first answer wins when both tries answer; a POST without an Idempotency-Key is never hedged', async () => {
    // "slow" answers after 600 ms: past the try timeout, before the hedge on "slower" (1.5 s) answers.
    const delayed = (ms: number) => async (name: string) =>
      startBackend(name, (req, res) => {
        req.resume()
        const timer = setTimeout(() => res.writeHead(200, { 'x-backend': name }).end(name), ms)
        res.on('close', () => clearTimeout(timer))
      })
    const slow = await delayed(600)('slow')
    const slower = await delayed(1_500)('slower')
    backends.push(slow, slower)
    lb = await startLb({ upstreams: [slow.url, slower.url], strategy: 'round-robin', tryTimeoutMs: 300 })
    const before = await retriesOf('try-timeout')
    const first = await get(lb.port, '/a') // to slow first: the hedge to slower loses
    expect(first.body).toBe('slow')
    const second = await get(lb.port, '/b') // to slower first: the hedge to slow wins at ~900 ms
    expect(second.body).toBe('slow')
    expect((await retriesOf('try-timeout')) - before).toBe(2)

    const t0 = performance.now()
    const post = await get(lb.port, '/c', { method: 'POST', body: 'x' })
    expect(performance.now() - t0).toBeGreaterThanOrEqual(550)
    expect(post.status).toBe(200)
    expect((await retriesOf('try-timeout')) - before).toBe(2) // not hedged: it may not be sent twice
  })

  it('no hedge without another upstream, or with FLEET_LB_TRY_TIMEOUT=0: the headers timeout answers 504', async () => {
    const stuck = await hung('alone')
    backends.push(stuck)
    lb = await startLb({ upstreams: [stuck.url], tryTimeoutMs: 100, headersTimeoutMs: 600 })
    const before = await retriesOf('try-timeout')
    const res = await get(lb.port, '/x')
    expect(res.status).toBe(504)
    expect(JSON.parse(res.body).error.code).toBe('FLEET_E_LB_UPSTREAM_TIMEOUT')
    expect((await retriesOf('try-timeout')) - before).toBe(0)
  })
})
