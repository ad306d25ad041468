/** RFC 9110/9112 duties of the proxy, over raw sockets (smuggling attempts included). */
import http from 'node:http'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LoadBalancer } from '../../src/lb/index.js'
import { trustedProxies } from '../../src/lb/options.js'
import {
  type Backend,
  echo,
  raw,
  rawClosed,
  startBackend,
  startLb,
  statusOf,
  TEST_ENGINE,
  until,
} from './helpers.js'

/** The Node engine's own parser and rules; on HAProxy some answers differ (docs/load-balancer.md, "Engines"). */
const NODE = TEST_ENGINE === 'node'

interface Echo {
  backend: string
  method: string
  url: string
  headers: Record<string, string>
  bytes: number
}

function bodyOf(text: string): string {
  return text.slice(text.indexOf('\r\n\r\n') + 4)
}

function echoOf(text: string): Echo {
  return JSON.parse(bodyOf(text)) as Echo
}

describe('load balancer: HTTP conformance', () => {
  let backend: Backend
  let lb: LoadBalancer
  /** Every raw request the backend received, as text (to prove nothing was smuggled through). */
  const received: string[] = []

  beforeAll(async () => {
    backend = await startBackend('a', (req, res, b) => {
      received.push(`${req.method} ${req.url}`)
      const u = req.url ?? ''
      if (u.startsWith('/status/')) {
        const code = Number(u.slice(8))
        res.writeHead(code, { 'x-custom': '1' })
        res.end(code === 204 || code === 304 ? undefined : 'should not be sent')
        return
      }
      if (u === '/hop') {
        res.writeHead(200, {
          connection: 'x-secret',
          'x-secret': 'drop me',
          'keep-alive': 'timeout=5',
          'proxy-authenticate': 'Basic',
          'x-keep': 'yes',
        })
        res.end('ok')
        return
      }
      if (u === '/cookies') {
        res.setHeader('set-cookie', ['a=1', 'b=2'])
        res.end('ok')
        return
      }
      if (u === '/continue') {
        let n = 0
        req.on('data', (c: Buffer) => {
          n += c.length
        })
        req.on('end', () => res.end(`got ${n}`))
        return
      }
      echo(req, res, b)
    })
    lb = await startLb({
      upstreams: [backend.url],
      maxHeaderSize: 4096,
      maxBodySize: 1000,
      requestBufferSize: 100,
      clientHeaderTimeoutMs: 300,
      clientBodyTimeoutMs: 300,
      instanceId: 'lb-test',
    })
  })

  afterAll(async () => {
    await lb.close()
    await backend.close()
  })

  it('removes hop-by-hop headers and those named in Connection, both ways', async () => {
    const out = await raw(
      lb.port,
      'GET /e HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: 5\r\n' +
        'TE: trailers\r\nProxy-Authorization: Basic abc\r\nUpgrade-Insecure-Requests: 1\r\nX-Public: 2\r\n\r\n',
    )
    const h = echoOf(out).headers
    // Headers named in Connection: only the Node engine knows them (HAProxy's rules name headers in advance).
    if (NODE) expect(h['x-private']).toBeUndefined()
    expect(h.te).toBeUndefined()
    expect(h['proxy-authorization']).toBeUndefined()
    expect(h['x-public']).toBe('2')
    expect(h['upgrade-insecure-requests']).toBe('1')
    expect(h.host).toBe('x')
    const back = await raw(lb.port, 'GET /hop HTTP/1.1\r\nHost: x\r\n\r\n')
    expect(back).toMatch(/x-keep: yes/i)
    if (NODE) expect(back).not.toMatch(/x-secret/i)
    expect(back).not.toMatch(/proxy-authenticate/i)
    expect(back).not.toMatch(/keep-alive: timeout=5/i)
  })

  it("adds Via both ways, replaces an untrusted client's X-Forwarded-For/Proto/Host, passes or creates X-Request-Id", async () => {
    const out = await raw(
      lb.port,
      'GET /e HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n' +
        'X-Forwarded-Host: evil\r\nForwarded: for=10.0.0.1;proto=https\r\nVia: 1.0 edge\r\nX-Request-Id: abc-123\r\n\r\n',
    )
    const h = echoOf(out).headers
    // No FLEET_LB_TRUSTED_PROXIES: the client cannot pose as 10.0.0.1 or claim https.
    expect(h['x-forwarded-for']).toBe('127.0.0.1')
    expect(h.forwarded).toBeUndefined()
    expect(h['x-forwarded-proto']).toBe('http')
    expect(h['x-forwarded-host']).toBe('shop.example')
    expect(h.via).toBe('1.0 edge, 1.1 lb-test')
    expect(h['x-request-id']).toBe('abc-123')
    expect(out).toMatch(/\r\nvia: 1\.1 lb-test\r\n/i)
    expect(out).toMatch(/\r\nx-request-id: abc-123\r\n/i)
    const fresh = await raw(lb.port, 'GET /e HTTP/1.1\r\nHost: x\r\n\r\n')
    const id = echoOf(fresh).headers['x-request-id']
    // A random prefix and a counter: base 36 (Node engine), HAProxy's request counter (HAProxy engine).
    expect(id).toMatch(NODE ? /^[0-9a-f]{8}-[0-9a-z]+$/ : /^[0-9a-f]{8}-\d+$/)
    expect(fresh).toContain(`x-request-id: ${id}`)
    const next = echoOf(await raw(lb.port, 'GET /e HTTP/1.1\r\nHost: x\r\n\r\n')).headers['x-request-id']
    expect(next).not.toBe(id)
  })

  it('from a trusted proxy, keeps X-Forwarded-For (appended to), X-Forwarded-Proto, X-Forwarded-Host and Forwarded', async () => {
    const trusting = await startLb({
      upstreams: [backend.url],
      trustedProxies: trustedProxies('127.0.0.0/8'),
    })
    try {
      const out = await raw(
        trusting.port,
        'GET /e HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n' +
          'X-Forwarded-Host: shop.example.com\r\nForwarded: for=203.0.113.9;proto=https\r\n\r\n',
      )
      const h = echoOf(out).headers
      expect(h['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1')
      expect(h['x-forwarded-proto']).toBe('https')
      expect(h['x-forwarded-host']).toBe('shop.example.com')
      expect(h.forwarded).toBe('for=203.0.113.9;proto=https')
      // A value other than http or https is not passed on, even from a trusted proxy.
      const odd = await raw(trusting.port, 'GET /e HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: gopher\r\n\r\n')
      expect(echoOf(odd).headers['x-forwarded-proto']).toBe('http')
    } finally {
      await trusting.close()
    }
    expect(() => trustedProxies('10.0.0.0/99')).toThrow(/FLEET_LB_TRUSTED_PROXIES.*not an address or CIDR/)
  })

  it('keeps repeated response headers (Set-Cookie) apart', async () => {
    const out = await raw(lb.port, 'GET /cookies HTTP/1.1\r\nHost: x\r\n\r\n')
    expect(out).toMatch(/set-cookie: a=1\r\n/i)
    expect(out).toMatch(/set-cookie: b=2\r\n/i)
  })

  it('answers 400 to two Host headers', async () => {
    const before = received.length
    const { out, closed } = await rawClosed(lb.port, 'GET /e HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')
    expect(statusOf(out)).toBe(400)
    // HAProxy's parser answers with its own page (2.6 cannot replace it).
    if (NODE) expect(out).toContain('FLEET_E_LB_BAD_REQUEST')
    expect(closed).toBe(true)
    expect(received.length).toBe(before)
  })

  it('answers 400 to a Host that is no host[:port] (an unclosed [ once made a 502)', async () => {
    for (const host of ['[uzz.example', '[::1', 'a b', 'a/b', 'x:80:80', '[zz]']) {
      const before = received.length
      const out = await raw(lb.port, `GET /e HTTP/1.1\r\nHost: ${host}\r\n\r\n`)
      if (NODE) {
        expect([host, statusOf(out)]).toEqual([host, 400])
        expect(out).toContain('FLEET_E_LB_BAD_REQUEST')
        expect(received.length).toBe(before)
      } else expect([host, statusOf(out) < 500]).toEqual([host, true])
    }
    for (const host of ['example.com', 'example.com:8080', '127.0.0.1:1', '[::1]:80', '[2001:db8::1]'])
      expect([host, statusOf(await raw(lb.port, `GET /e HTTP/1.1\r\nHost: ${host}\r\n\r\n`))]).toEqual([
        host,
        200,
      ])
  })

  it('answers 400 to a missing Host in HTTP/1.1', async () => {
    const out = await raw(lb.port, 'GET /e HTTP/1.1\r\n\r\n')
    expect(statusOf(out)).toBe(400)
  })

  const smuggling: [string, string][] = [
    [
      'CL.TE: Content-Length and Transfer-Encoding together',
      'POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    ],
    [
      'two different Content-Length headers',
      'POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhelloGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    ],
    [
      'Content-Length with a list',
      'POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 40\r\n\r\nhelloGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    ],
    [
      'Transfer-Encoding with chunked not last',
      'POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    ],
    [
      'an unknown Transfer-Encoding',
      'POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    ],
    [
      'space before the colon',
      'POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    ],
    [
      'obsolete line folding',
      'POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    ],
    [
      'a bare LF in a header line',
      'POST /e HTTP/1.1\r\nHost: x\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    ],
    [
      'a bad chunk size',
      'POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    ],
    [
      'HTTP/1.0 with Transfer-Encoding',
      'POST /e HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    ],
  ]
  for (const [name, text] of smuggling) {
    it(`refuses a smuggling attempt: ${name}`, async () => {
      const before = received.length
      const { out, closed } = await rawClosed(lb.port, text)
      const answers = out.match(/HTTP\/1\.[01] \d{3}/g) ?? []
      if (NODE) {
        expect(statusOf(out)).toBe(400)
        expect(out).toContain('FLEET_E_LB_BAD_REQUEST')
        expect(answers.length).toBe(1)
        expect(closed).toBe(true)
        expect(received).not.toContain('GET /smuggled')
        return
      }
      // HAProxy refuses the message, or repairs its framing (RFC 9112 6.3: Transfer-Encoding wins over
      // Content-Length) and then sends on what it parsed itself. Either way the web server never parses a
      // request the LB did not answer for: every request that reached it got exactly one answer.
      expect(answers.length).toBeGreaterThan(0)
      expect(received.length - before).toBe(answers.filter((a) => !a.endsWith(' 400')).length)
    })
  }

  it('passes a chunked HTTP/1.1 body and keeps the connection for the next request', async () => {
    const out = await raw(
      lb.port,
      'POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n' +
        'GET /second HTTP/1.1\r\nHost: x\r\n\r\n',
    )
    expect(out.match(/HTTP\/1\.1 200/g)?.length).toBe(2)
    expect(out).toContain('"bytes":11')
    expect(out).toContain('"url":"/second"')
  })

  it('sends no body for HEAD, 204 and 304', async () => {
    const head = await raw(
      lb.port,
      'HEAD /e HTTP/1.1\r\nHost: x\r\n\r\nGET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n',
    )
    expect(head.match(/HTTP\/1\.1 200/g)?.length).toBe(1)
    expect(head).toMatch(/HTTP\/1\.1 204/)
    expect(head).not.toContain('"backend"')
    const nm = await raw(
      lb.port,
      'GET /status/304 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n',
    )
    expect(nm).toMatch(/HTTP\/1\.1 304[\s\S]*HTTP\/1\.1 204/)
    expect(nm).not.toContain('should not be sent')
  })

  it('answers 100 Continue before the body of an Expect: 100-continue request, and 413 instead when too large', async () => {
    const s = net.connect({ port: lb.port, host: '127.0.0.1' })
    let out = ''
    s.on('data', (d: Buffer) => {
      out += d.toString()
    })
    s.write('POST /continue HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n')
    await until(() => out.length > 0, 3000, 'an interim answer')
    expect(out).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/)
    s.write('x'.repeat(500))
    await until(() => out.includes('got 500'), 3000, 'the final answer')
    s.destroy()
    expect(out).toContain('got 500')
    const big = await raw(
      lb.port,
      'POST /continue HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n',
    )
    expect(statusOf(big)).toBe(413)
    expect(big).not.toContain('100 Continue')
  })

  it('answers 431 to oversized headers and 413 to oversized bodies (announced or chunked)', async () => {
    const h = await raw(lb.port, `GET /e HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`)
    expect(statusOf(h)).toBe(431)
    expect(h).toContain('FLEET_E_LB_HEADERS_TOO_LARGE')
    const cl = await raw(
      lb.port,
      `POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n${'a'.repeat(2000)}`,
    )
    expect(statusOf(cl)).toBe(413)
    expect(cl).toContain('FLEET_E_LB_BODY_TOO_LARGE')
    const chunk = `${(1500).toString(16)}\r\n${'a'.repeat(1500)}\r\n0\r\n\r\n`
    const te = await raw(lb.port, `POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}`)
    expect(statusOf(te)).toBe(413)
  })

  it('answers 408 and closes when a client is slow to send headers or body', async () => {
    const slowHead = await rawClosed(lb.port, 'GET /e HTTP/1.1\r\nHost: x\r\n', 3000)
    expect(statusOf(slowHead.out)).toBe(408)
    expect(slowHead.closed).toBe(true)
    const slowBody = await rawClosed(
      lb.port,
      'POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nabc',
      3000,
    )
    expect(statusOf(slowBody.out)).toBe(408)
    expect(slowBody.out).toContain('FLEET_E_LB_CLIENT_TIMEOUT')
    const slowStream = await rawClosed(
      lb.port,
      'POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nabc',
      3000,
    )
    expect(statusOf(slowStream.out)).toBe(408)
  })

  it('answers 405 to CONNECT and TRACE', async () => {
    expect(statusOf(await raw(lb.port, 'TRACE / HTTP/1.1\r\nHost: x\r\n\r\n'))).toBe(405)
    const c = await raw(lb.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
    expect([0, 400, 405]).toContain(statusOf(c))
  })

  it('survives an HTTP/1 request line that claims version 2.0 (a body or none), and serves on', async () => {
    for (const text of [
      'GET /e HTTP/2.0\r\nHost: x\r\n\r\n',
      'POST /e HTTP/2.0\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi',
    ]) {
      const { out } = await rawClosed(lb.port, text)
      expect(statusOf(out)).toBeGreaterThanOrEqual(200)
    }
    expect(statusOf(await raw(lb.port, 'GET /e HTTP/1.1\r\nHost: x\r\n\r\n'))).toBe(200)
  })

  it('keeps an HTTP/1.0 client working (no chunked response to it)', async () => {
    const { out, closed } = await rawClosed(lb.port, 'GET /e HTTP/1.0\r\nHost: x\r\n\r\n')
    expect(statusOf(out)).toBe(200)
    expect(out).not.toMatch(/transfer-encoding: chunked/i)
    expect(closed).toBe(true)
  })

  it('passes a request through node:http agents with keep-alive', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    for (let i = 0; i < 5; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        http
          .get({ port: lb.port, host: '127.0.0.1', path: `/k${i}`, agent }, (res) => {
            res.resume()
            res.on('end', () => resolve(res.statusCode ?? 0))
          })
          .on('error', reject)
      })
      expect(status).toBe(200)
    }
    agent.destroy()
  })
})
