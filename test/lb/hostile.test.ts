/**
 * Hostile clients at the public port: slow bodies (the request deadline, buffering before an upstream is
 * taken, the streamed-body and memory caps, a body timeout while queued that once killed the LB), 413
 * every time, no tunnel after a refused Upgrade, CONNECT and a missing Host answered in JSON, and no
 * internal address in an answer. Real backends and raw sockets on loopback.
 */
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { LoadBalancer } from '../../src/lb/index.js'
import {
  type Backend,
  echo,
  get,
  raw,
  startBackend,
  startLb,
  statusOf,
  TEST_ENGINE,
  until,
} from './helpers.js'

/** The Node engine's own parser and limits; on HAProxy some answers differ (docs/load-balancer.md, "Engines"). */
const NODE = TEST_ENGINE === 'node'
/** A limit only the Node engine has (docs/load-balancer.md lists them); not run on HAProxy. */
const nodeOnly = NODE ? it : it.skip

/** Opens a connection, sends `head`, then one byte of body every `everyMs`; resolves with what came back. */
function trickle(port: number, head: string, everyMs: number, maxMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' })
    let out = ''
    const drip = setInterval(() => s.writable && s.write('x'), everyMs)
    const stop = setTimeout(() => s.destroy(), maxMs)
    s.on('data', (d: Buffer) => {
      out += d.toString('latin1')
    })
    s.on('error', () => {})
    s.on('close', () => {
      clearInterval(drip)
      clearTimeout(stop)
      resolve(out)
    })
    s.write(head)
  })
}

/** Client connections the LB has open (`fleet_lb_connections`; on HAProxy read from its stats every 200 ms). */
async function openConnections(lb: LoadBalancer): Promise<number> {
  const metrics = (await get(lb.adminPort, '/metrics')).body
  return Number(/^fleet_lb_connections (\d+)/m.exec(metrics)?.[1] ?? 0)
}

describe('load balancer: hostile clients', () => {
  const backends: Backend[] = []
  let lb: LoadBalancer | undefined

  afterEach(async () => {
    await lb?.close()
    lb = undefined
    await Promise.all(backends.splice(0).map((b) => b.close()))
  })

  it('slow bodies hold no upstream connection, end in 408 at the request deadline, and GETs go on', async () => {
    const b = await startBackend('b')
    backends.push(b)
    // Two upstream connections only: before buffering, two trickling bodies were enough to stall every GET.
    // The deadline leaves time to open all 200 on a loaded machine before the first is answered 408.
    lb = await startLb({ upstreams: [b.url], upstreamConnections: 2, clientRequestTimeoutMs: 4_000 })
    const port = lb.port
    const slow = Array.from({ length: 200 }, () =>
      trickle(port, 'POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n', 200, 10_000),
    )
    await until(async () => (await openConnections(lb!)) >= 200, 3_500, 'the LB to hold the 200 slow bodies')
    const gets = await Promise.all(Array.from({ length: 40 }, (_, i) => get(port, `/g/${i}`)))
    expect(gets.map((g) => g.status)).toEqual(gets.map(() => 200))
    const answers = await Promise.all(slow)
    for (const a of answers) {
      expect(a).toMatch(/^HTTP\/1\.1 408 /)
      expect(a).toContain('FLEET_E_LB_CLIENT_TIMEOUT')
    }
    expect(b.hits).toBe(40) // no slow body reached the backend
    expect((await get(port, '/after')).status).toBe(200)
  }, 30_000)

  it('a streamed body that goes silent while queued for an upstream gets 408, and the LB lives on', async () => {
    let held: (() => void) | undefined
    const b = await startBackend('b', (req, res, backend) => {
      if (req.url === '/hold') {
        held = () => res.end('released')
        req.resume()
        return
      }
      echo(req, res, backend)
    })
    backends.push(b)
    lb = await startLb({
      upstreams: [b.url],
      upstreamConnections: 1,
      requestBufferSize: 10,
      clientBodyTimeoutMs: 400,
    })
    const hold = get(lb.port, '/hold') // takes the only upstream connection
    await until(() => held !== undefined)
    // Larger than the buffer: streamed, so it waits in the upstream queue while its client goes silent.
    const out = await raw(
      lb.port,
      `POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n${'y'.repeat(50)}`,
      2_000,
    )
    expect(out).toMatch(/^HTTP\/1\.1 408 /)
    held?.()
    expect((await hold).body).toBe('released')
    expect((await get(lb.port, '/alive')).status).toBe(200)
  }, 15_000)

  nodeOnly(
    'caps the bodies streamed at once and the bytes held: 503 FLEET_E_LB_OVERLOADED',
    async () => {
      const b = await startBackend('b')
      backends.push(b)
      lb = await startLb({
        upstreams: [b.url],
        requestBufferSize: 10,
        maxStreamedBodies: 1,
        clientBodyTimeoutMs: 3_000,
      })
      const first = trickle(
        lb.port,
        'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nyyyyyyyyyyyy',
        100,
        1_500,
      )
      await until(() => b.hits === 1, 1_000, 'the first body to stream to the backend') // it holds the one slot
      const second = await raw(
        lb.port,
        `POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n${'z'.repeat(100)}`,
      )
      expect(second).toMatch(/^HTTP\/1\.1 503 /)
      expect(second).toContain('FLEET_E_LB_OVERLOADED')
      expect(second).toMatch(/retry-after: \d+/i)
      await first
      await lb.close()

      lb = await startLb({ upstreams: [b.url], bufferMemory: 1_000, clientRequestTimeoutMs: 1_000 })
      const hog = trickle(
        lb.port,
        `POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n${'h'.repeat(800)}`,
        100,
        800,
      )
      // Until the LB has read the hog's 800 bytes a 500-byte body still fits (200, and the LB closes it):
      // sent again until it does not, while the hog holds them.
      let over = ''
      await until(
        async () => {
          over = await raw(
            lb!.port,
            `POST /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 500\r\n\r\n${'o'.repeat(500)}`,
          )
          return statusOf(over) !== 200
        },
        700,
        'a body refused while the hog holds its bytes',
      )
      expect(over).toMatch(/^HTTP\/1\.1 503 /)
      expect(over).toContain('FLEET_E_LB_OVERLOADED')
      await hog
      // The held bytes were given back: the same body fits now.
      const fits = await raw(
        lb.port,
        `POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n${'o'.repeat(500)}`,
      )
      expect(fits).toMatch(/^HTTP\/1\.1 200 /)
    },
    15_000,
  )

  it('answers 413 every time, also to a client that goes on sending its body', async () => {
    const b = await startBackend('b')
    backends.push(b)
    lb = await startLb({ upstreams: [b.url], maxBodySize: 1_000, requestBufferSize: 100 })
    const body = Buffer.alloc(200_000, 'x')
    for (let i = 0; i < 16; i++) {
      const head = `POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`
      const out = await raw(lb.port, Buffer.concat([Buffer.from(head), body]), 300)
      expect(out, `try ${i}`).toMatch(/^HTTP\/1\.1 413 /)
      expect(out).toContain('FLEET_E_LB_BODY_TOO_LARGE')
    }
    expect(b.hits).toBe(0)
    // Chunked, with no size announced: streamed once past the buffer, and 413 when it passes the limit.
    const chunk = `${(600).toString(16)}\r\n${'c'.repeat(600)}\r\n`
    const out = await raw(
      lb.port,
      `POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}${chunk}${chunk}0\r\n\r\n`,
      1_000,
    )
    expect(out).toMatch(/^HTTP\/1\.1 413 /)
    expect(out).toContain('FLEET_E_LB_BODY_TOO_LARGE')
  }, 30_000)

  it('opens a tunnel only after 101: a refused Upgrade is a plain answer and the connection closes', async () => {
    const seen: string[] = []
    const b = await startBackend('b', (req, res) => {
      seen.push(req.url ?? '')
      req.resume()
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }).end('ok')
    })
    backends.push(b)
    lb = await startLb({ upstreams: [b.url] })
    const out = await raw(
      lb.port,
      'GET /healthz2 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n' +
        'GET /smuggled HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\n\r\n',
      1_000,
    )
    expect(out.match(/HTTP\/1\.1 /g)).toHaveLength(1)
    if (NODE) {
      expect(out).toMatch(/^HTTP\/1\.1 200 /)
      expect(out).toMatch(/connection: close/i)
      expect(seen).toEqual(['/healthz2'])
    } else {
      // HAProxy refuses a WebSocket upgrade without its handshake headers outright (400).
      expect(out).toMatch(/^HTTP\/1\.1 400 /)
    }
    expect(seen).not.toContain('/smuggled')
  })

  it('answers CONNECT with 405 and a request without Host with 400, both in JSON', async () => {
    const b = await startBackend('b')
    backends.push(b)
    lb = await startLb({ upstreams: [b.url] })
    const connect = await raw(lb.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
    expect(connect).toMatch(/^HTTP\/1\.1 405 /)
    expect(connect).toContain('"code":"FLEET_E_LB_METHOD_NOT_ALLOWED"')
    const noHost = await raw(lb.port, 'GET / HTTP/1.1\r\n\r\n')
    expect(noHost).toMatch(/^HTTP\/1\.1 400 /)
    if (NODE) {
      // HAProxy's parser answers with its own page (2.6 cannot replace it).
      expect(noHost).toContain('"code":"FLEET_E_LB_BAD_REQUEST"')
      expect(noHost).toContain('Host header')
    }
    // HTTP/1.0 has no Host requirement.
    expect(await raw(lb.port, 'GET /old HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /)
    expect(b.hits).toBe(1)
  })

  it('names no internal address when an upstream fails', async () => {
    const b = await startBackend('b', (req) => req.socket.destroy())
    backends.push(b)
    lb = await startLb({ upstreams: [b.url], retries: 0 })
    const res = await get(lb.port, '/x', { method: 'POST', body: 'x' })
    expect(res.status).toBe(502)
    expect(JSON.parse(res.body).error.code).toBe('FLEET_E_LB_BAD_GATEWAY')
    expect(res.body).not.toContain(String(b.port))
    expect(res.body).not.toContain('127.0.0.1')
  })

  it('answers many early errors on one keep-alive connection without piling listeners on its socket', async () => {
    const b = await startBackend('b', echo)
    backends.push(b)
    lb = await startLb({ upstreams: [b.url] })
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`)
    process.on('warning', onWarning)
    try {
      // Internal paths are answered 404 by the LB itself, before any body: the early-answer path. One
      // request at a time on one connection, each sent once the previous answer arrived.
      const s = net.connect({ port: lb.port, host: '127.0.0.1' })
      let seen = 0
      await new Promise<void>((resolve, reject) => {
        s.on('error', reject)
        s.on('data', (d: Buffer) => {
          seen += d.toString('latin1').match(/HTTP\/1\.1 404 /g)?.length ?? 0
          if (seen === 25) resolve()
          else s.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n')
        })
        s.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n')
      })
      s.destroy()
      expect(seen).toBe(25)
      await new Promise((r) => setImmediate(r)) // warnings are emitted with process.nextTick: out by the next turn
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings.filter((w) => w.includes('MaxListeners'))).toEqual([])
    expect(b.hits).toBe(0)
  })
})
