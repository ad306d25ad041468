/**
 * Bodies over a web server's limit, through the LB's public port, in front of the real shop (real PostgreSQL
 * and Redis): 1.1 MB, 2 MB and 5 MB JSON bodies to POST /api/users (FLEET_BODY_LIMIT, 1mb) and a 10 MB
 * image to PUT /api/products/:id/image (FLEET_IMAGE_MAX_BYTES, 10mb), each with Content-Length and chunked,
 * with and without `Expect: 100-continue`, from a client that goes on sending its whole body. Every one of
 * the 16 must be answered `413 FLEET_E_HTTP_BODY_TOO_LARGE`: never a 502 (the web server answered early and
 * closed while the LB still wrote the body: EPIPE), never a reset, and never counted against the upstream.
 * Then the same against a bare backend that answers before reading any of the body and closes at once (the
 * LB relays that answer whatever the upstream does with the rest), and one that resets without an answer.
 */
import type { AddressInfo } from 'node:net'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LoadBalancer } from '../../src/lb/index.js'
import { ADMIN, createShop } from '../shop/helpers.js'
import type { TestApp } from '../support/app.js'
import {
  type Backend,
  get,
  raw,
  startBackend,
  startLb,
  statusOf,
  TEST_ENGINE,
  testOptions,
  until,
} from './helpers.js'

const MB = 1024 * 1024

interface Outcome {
  /** The final status, 0 when none arrived whole. */
  status: number
  code: string | undefined
  /** How the connection broke before the answer arrived whole and the body was sent: the error, or `closed`. */
  broken: string | undefined
  /** The answer asked to close the connection. */
  close: boolean
}

interface Upload {
  method: string
  path: string
  contentType: string
  bytes: number
  chunked: boolean
  expect100: boolean
  cookie?: string
}

/**
 * Sends one upload on a raw connection, as a plain client does: with `Expect: 100-continue` it waits for
 * `100 Continue` (up to 1 s, as curl does) and sends nothing more when a final answer comes instead;
 * otherwise it writes its whole body, with backpressure, whatever comes back meanwhile. Resolves once the
 * first final answer arrived whole and the body is sent (or was not to be sent); `broken` says how the
 * connection broke before that (a reset or broken pipe while sending costs a client like curl the answer).
 */
function upload(port: number, u: Upload): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' })
    let input = Buffer.alloc(0)
    let settled = false
    let interim = false
    let final: { status: number; head: string; bodyStart: number; length: number } | undefined
    let answer: Outcome | undefined
    let sending = false
    const done = (o: Outcome): void => {
      if (settled) return
      settled = true
      clearTimeout(hard)
      s.destroy()
      resolve(o)
    }
    const hard = setTimeout(
      () => done({ status: 0, code: undefined, broken: 'timeout', close: false }),
      20_000,
    )
    const parse = (): void => {
      for (;;) {
        if (final) {
          if (input.length - final.bodyStart < final.length) return
          const body = input.subarray(final.bodyStart, final.bodyStart + final.length).toString()
          let code: string | undefined
          try {
            code = JSON.parse(body).error?.code
          } catch {
            code = undefined
          }
          answer = {
            status: final.status,
            code,
            broken: undefined,
            close: /\r\nconnection: close\r\n/i.test(final.head),
          }
          if (!sending) done(answer)
          return
        }
        const end = input.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = input.subarray(0, end + 2).toString('latin1')
        const status = Number(head.slice(9, 12))
        if (status < 200) {
          interim = true
          input = input.subarray(end + 4)
          sendBody()
          continue
        }
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
        final = { status, head, bodyStart: end + 4, length }
      }
    }
    s.on('data', (d: Buffer) => {
      input = Buffer.concat([input, d])
      parse()
    })
    s.on('error', (err: Error & { code?: string }) =>
      done({ ...(answer ?? { status: 0, code: undefined, close: false }), broken: err.code ?? err.message }),
    )
    s.on('close', () =>
      done(
        answer && !sending
          ? answer
          : { ...(answer ?? { status: 0, code: undefined, close: false }), broken: 'closed' },
      ),
    )
    let bodyStarted = false
    const sendBody = (): void => {
      if (bodyStarted || final) return
      bodyStarted = true
      sending = true
      // A body of the announced type: a JSON object, or a JPEG's first bytes and then zeros.
      const piece = 64 * 1024
      let sent = 0
      const next = (): Buffer => {
        const n = Math.min(piece, u.bytes - sent)
        const b = Buffer.alloc(n, u.contentType === 'application/json' ? 'a' : 0)
        if (sent === 0) {
          if (u.contentType === 'application/json') b.write('{"email":"x@example.test","password":"')
          else b.set([0xff, 0xd8, 0xff, 0xe0])
        }
        if (sent + n === u.bytes && u.contentType === 'application/json') b.write('"}', n - 2)
        sent += n
        return u.chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), b, Buffer.from('\r\n')]) : b
      }
      const pump = (): void => {
        while (sent < u.bytes) {
          if (settled || s.destroyed) return
          if (!s.write(next())) {
            s.once('drain', pump)
            return
          }
        }
        if (settled || s.destroyed) return
        s.write(u.chunked ? '0\r\n\r\n' : '', () => {
          sending = false
          if (answer) done(answer)
        })
      }
      pump()
    }
    const head =
      `${u.method} ${u.path} HTTP/1.1\r\nHost: shop.test\r\nContent-Type: ${u.contentType}\r\n` +
      (u.chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${u.bytes}\r\n`) +
      (u.expect100 ? 'Expect: 100-continue\r\n' : '') +
      (u.cookie ? `Cookie: ${u.cookie}\r\n` : '') +
      '\r\n'
    s.write(head)
    if (!u.expect100) sendBody()
    else
      setTimeout(() => {
        if (!interim) sendBody()
      }, 1_000)
  })
}

describe('load balancer in front of the shop: bodies over the limit', () => {
  let shop: TestApp
  let lb: LoadBalancer
  let cookie: string
  let productId: number

  beforeAll(async () => {
    shop = await createShop({ products: 2, reviews: 0 })
    await shop.app.listen({ port: 0, host: '127.0.0.1' })
    const port = (shop.app.server.address() as AddressInfo).port
    lb = await startLb({ upstreams: [`http://127.0.0.1:${port}`] })
    const login = await get(lb.port, '/api/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ADMIN),
    })
    expect(login.status).toBe(200)
    cookie = String(login.headers['set-cookie']?.[0]).split(';')[0] as string
    const products = await shop.deps.db.query<{ id: number }>('SELECT id FROM products ORDER BY id LIMIT 1')
    productId = (products.rows[0] as { id: number }).id
  }, 60_000)

  afterAll(async () => {
    await lb?.close()
    await shop?.close()
  })

  it('answers 16 of 16 with 413 FLEET_E_HTTP_BODY_TOO_LARGE, no 502, no reset, and the upstream stays healthy', async () => {
    const uploads: Upload[] = []
    for (const chunked of [false, true])
      for (const expect100 of [false, true]) {
        for (const bytes of [1.1 * MB, 2 * MB, 5 * MB])
          uploads.push({
            method: 'POST',
            path: '/api/users',
            contentType: 'application/json',
            bytes: Math.round(bytes),
            chunked,
            expect100,
          })
        uploads.push({
          method: 'PUT',
          path: `/api/products/${productId}/image`,
          contentType: 'image/jpeg',
          bytes: 10 * MB + 64 * 1024,
          chunked,
          expect100,
          cookie,
        })
      }
    expect(uploads).toHaveLength(16)
    const outcomes: (Outcome & { what: string })[] = []
    for (const u of uploads) {
      const what = `${u.method} ${u.path} ${(u.bytes / MB).toFixed(1)} MB ${u.chunked ? 'chunked' : 'content-length'}${u.expect100 ? ' expect-100' : ''}`
      outcomes.push({ what, ...(await upload(lb.port, u)) })
    }
    const answered413 = outcomes.filter(
      (o) => o.status === 413 && o.code === 'FLEET_E_HTTP_BODY_TOO_LARGE' && !o.broken,
    )
    console.log(
      `413 FLEET_E_HTTP_BODY_TOO_LARGE (and no reset) in ${answered413.length} of ${outcomes.length}:\n${outcomes
        .map((o) => `  ${o.what}: ${o.status} ${o.code ?? ''}${o.broken ? ` broken: ${o.broken}` : ''}`)
        .join('\n')}`,
    )
    const [upstream] = lb.upstreams.all()
    console.log(`upstream: ${upstream?.failures} failures, ${upstream?.ejections} ejections`)
    expect(
      outcomes.filter((o) => o.status !== 413 || o.code !== 'FLEET_E_HTTP_BODY_TOO_LARGE' || o.broken),
    ).toEqual([])
    // The LB read and dropped the rest of each body: the connection stays open for the next request.
    expect(outcomes.filter((o) => o.close).map((o) => o.what)).toEqual([])
    expect(upstream?.failures).toBe(0)
    expect(upstream?.ejections).toBe(0)
    // The LB counted no bad gateway, and the shop still answers through it. The Node engine counts by
    // status; the HAProxy engine by class, read from HAProxy every 200 ms.
    const counted = async (): Promise<string> => (await get(lb.adminPort, '/metrics')).body
    if (TEST_ENGINE === 'node') expect(await counted()).toMatch(/fleet_lb_requests_total\{code="413"\} 16/)
    else {
      const fourxx = async () =>
        Number(/fleet_lb_requests_total\{code="4xx"\} (\d+)/.exec(await counted())?.[1])
      await until(async () => (await fourxx()) >= 16, 3000, '16 answers of class 4xx counted')
    }
    expect(await counted()).not.toContain('FLEET_E_LB_BAD_GATEWAY')
    expect((await get(lb.port, '/api/categories')).status).toBe(200)
  }, 120_000)

  it("answers the LB's own 413 to a Content-Length past 32 bits under the default 2gb limit", async () => {
    // HAProxy's integer header fetch is 32 bits: 3000000000 read as negative, 4294967297 as 1.
    expect(testOptions().maxBodySize).toBe(2 * 1024 * MB)
    for (const length of ['2147483649', '3000000000', '4294967297', '00005000000000', '99999999999999']) {
      const out = await raw(
        lb.port,
        `POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n\r\n{}`,
      )
      expect(statusOf(out), `Content-Length: ${length}`).toBe(413)
      expect(out).toContain('FLEET_E_LB_BODY_TOO_LARGE')
    }
  })
})

describe('load balancer: an upstream that answers before reading the body, and closes', () => {
  let backend: Backend
  let lb: LoadBalancer

  afterAll(async () => {
    await lb?.close()
    await backend?.close()
  })

  // An upstream that resets right after its early answer: the Node engine reads the answer before the reset
  // (src/lb/connector.ts); through HAProxy about half of them are lost (docs/load-balancer.md). Fleet's own
  // web server drains instead of resetting, so in front of it both engines relay 16 of 16 (the test above).
  const nodeOnly = TEST_ENGINE === 'node' ? it : it.skip
  nodeOnly(
    'relays the early answer every time (never 502), counts no failure, and a reset with no answer is still 502',
    async () => {
      let mode: 'answer' | 'reset' = 'answer'
      backend = await startBackend('early', (req, res) => {
        if (mode === 'reset') {
          req.socket.destroy()
          return
        }
        // Not a byte of the body read: Node closes the socket with it unread, and the kernel sends a reset.
        const body = JSON.stringify({ error: { code: 'FLEET_E_HTTP_BODY_TOO_LARGE', message: 'too large' } })
        res.writeHead(413, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          connection: 'close',
        })
        res.end(body)
      })
      lb = await startLb({ upstreams: [backend.url], retries: 0 })
      const outcomes: Outcome[] = []
      for (let i = 0; i < 16; i++)
        outcomes.push(
          await upload(lb.port, {
            method: 'POST',
            path: '/up',
            contentType: 'application/json',
            bytes: 5 * MB,
            chunked: i % 2 === 1,
            expect100: i % 4 >= 2,
          }),
        )
      expect(outcomes.filter((o) => o.status !== 413 || o.broken)).toEqual([])
      const [upstream] = lb.upstreams.all()
      expect(upstream?.failures).toBe(0)
      mode = 'reset'
      const reset = await upload(lb.port, {
        method: 'POST',
        path: '/up',
        contentType: 'application/json',
        bytes: 5 * MB,
        chunked: false,
        expect100: false,
      })
      expect(reset.status).toBe(502)
      expect(reset.code).toBe('FLEET_E_LB_BAD_GATEWAY')
    },
    60_000,
  )
})
