/**
 * TLS at the edge, on the engine the LB suites run on (FLEET_TEST_LB_ENGINE): HTTPS with a certificate chain
 * the test makes (openssl), HTTP/2 and HTTP/1.1 on one port by ALPN (Node's clients and curl), a renewed
 * certificate served to new connections while an open HTTP/2 session goes on, the HTTP port's redirect, and
 * the shop's Secure cookie and HSTS through the LB with no trusted-proxy setting.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { LoadBalancer } from '../../src/lb/index.js'
import { ensureProgram } from '../../src/stack/programs.js'
import { ADMIN, createShop } from '../shop/helpers.js'
import type { TestApp } from '../support/app.js'
import { makeTestCa, type TestCa } from '../support/certs.js'
import { type Backend, startBackend, startLb, TEST_ENGINE } from './helpers.js'

let testCa: TestCa
let ca: Buffer
let files: { certFile: string; keyFile: string }
let haproxyPath: string | undefined

/** A leaf certificate for localhost and 127.0.0.1, signed by the test's CA; the cert file holds the chain. */
function issueLeaf(cn: string): void {
  const leaf = testCa.issue(cn)
  fs.writeFileSync(files.certFile, Buffer.concat([fs.readFileSync(leaf.certFile), ca]))
  fs.copyFileSync(leaf.keyFile, files.keyFile)
}

beforeAll(() => {
  if (TEST_ENGINE === 'haproxy')
    haproxyPath = ensureProgram({ command: 'haproxy', pkg: 'haproxy', otherwise: '' })
  testCa = makeTestCa('fleet-tls-test-')
  ca = fs.readFileSync(testCa.caFile)
  files = { certFile: path.join(testCa.dir, 'chain.pem'), keyFile: path.join(testCa.dir, 'key.pem') }
  issueLeaf('first')
})
afterAll(() => testCa.cleanup())

/** The CN of the certificate a new TLS connection is given. */
function peerName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      { port, host: '127.0.0.1', servername: 'localhost', ca, ALPNProtocols: ['http/1.1'] },
      () => {
        const cn = s.getPeerCertificate().subject.CN
        s.end()
        resolve(String(Array.isArray(cn) ? cn[0] : cn))
      },
    )
    s.on('error', reject)
  })
}

function h2get(
  session: http2.ClientHttp2Session,
  p: string,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': p, ':method': body === undefined ? 'GET' : 'POST' })
    let out = ''
    let status = 0
    req.on('response', (h) => {
      status = Number(h[':status'])
    })
    req.setEncoding('utf8')
    req.on('data', (c: string) => {
      out += c
    })
    req.on('end', () => resolve({ status, body: out }))
    req.on('error', reject)
    req.end(body)
  })
}

describe(`load balancer: TLS at the edge (${TEST_ENGINE} engine)`, () => {
  const backends: Backend[] = []
  let lb: LoadBalancer | undefined
  let shop: TestApp | undefined

  afterEach(async () => {
    await lb?.close()
    lb = undefined
    await Promise.all(backends.splice(0).map((b) => b.close()))
    await shop?.close()
    shop = undefined
  })

  async function tlsLb(upstream: string, extra: { redirectPort?: number } = {}): Promise<LoadBalancer> {
    return startLb({ upstreams: [upstream], tls: files, haproxyPath, ...extra })
  }

  it('serves HTTP/1.1 and HTTP/2 on one port by ALPN, and tells the web server the request was https', async () => {
    const b = await startBackend('b')
    backends.push(b)
    lb = await tlsLb(b.url)
    const port = lb.port

    const h1 = await new Promise<{ status: number; body: string; alpn: string }>((resolve, reject) => {
      const options: https.RequestOptions & tls.ConnectionOptions = {
        host: '127.0.0.1',
        port,
        path: '/one',
        ca,
        servername: 'localhost',
        ALPNProtocols: ['http/1.1'],
        agent: false, // its own connection (a pooled one was seen to stall under vitest)
      }
      const req = https.get(options, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            alpn: (res.socket as tls.TLSSocket).alpnProtocol || '',
          }),
        )
      })
      req.on('error', reject)
    })
    expect(h1.status).toBe(200)
    expect(h1.alpn).toBe('http/1.1')
    const seen = JSON.parse(h1.body).headers as Record<string, string>
    expect(seen['x-forwarded-proto']).toBe('https')

    const session = http2.connect(`https://localhost:${port}`, { ca })
    try {
      const answers = await Promise.all([1, 2, 3].map((i) => h2get(session, `/h2/${i}`)))
      for (const [i, a] of answers.entries()) {
        expect(a.status).toBe(200)
        expect(JSON.parse(a.body).url).toBe(`/h2/${i + 1}`)
        expect(JSON.parse(a.body).headers['x-forwarded-proto']).toBe('https')
      }
      // A body over HTTP/2 (no Content-Length: DATA frames) reaches the web server whole.
      const post = await h2get(session, '/h2/post', 'x'.repeat(5000))
      expect(post.status).toBe(200)
      expect(JSON.parse(post.body).bytes).toBe(5000)
    } finally {
      session.close()
    }

    const { stdout } = await promisify(execFile)('curl', [
      '-s',
      '--http2',
      '--cacert',
      testCa.caFile,
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      '--resolve',
      `localhost:${port}:127.0.0.1`,
      `https://localhost:${port}/curl`,
    ])
    expect(stdout).toBe('2 200')
  })

  it('serves a renewed certificate to new connections while an open HTTP/2 session goes on', async () => {
    const b = await startBackend('b')
    backends.push(b)
    lb = await tlsLb(b.url)
    expect(await peerName(lb.port)).toBe('first')
    const session = http2.connect(`https://localhost:${lb.port}`, { ca })
    try {
      expect((await h2get(session, '/before')).status).toBe(200)
      issueLeaf('renewed')
      await lb.reloadCertificate()
      expect(await peerName(lb.port)).toBe('renewed')
      expect((await h2get(session, '/after')).status).toBe(200) // the same session, not dropped
    } finally {
      session.close()
      issueLeaf('first')
    }
  })

  it('redirects the HTTP port to https with the same path and query', async () => {
    const b = await startBackend('b')
    backends.push(b)
    const probe = http.createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
    const redirectPort = (probe.address() as AddressInfo).port
    await new Promise((r) => probe.close(r))
    lb = await tlsLb(b.url, { redirectPort })
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get(
        {
          host: '127.0.0.1',
          port: redirectPort,
          path: '/a/b?c=1',
          headers: { host: `shop.example:${redirectPort}` },
        },
        resolve,
      )
      req.on('error', reject)
    })
    res.resume()
    expect(res.statusCode).toBe(308)
    expect(res.headers.location).toBe(`https://shop.example:${lb.port}/a/b?c=1`)
    expect(b.hits).toBe(0)
  })

  it("gives the shop's session cookie Secure and the answers HSTS, with no trusted-proxy setting", async () => {
    shop = await createShop({ products: 0 })
    await shop.app.listen({ port: 0, host: '127.0.0.1' })
    const shopUrl = `http://127.0.0.1:${(shop.app.server.address() as AddressInfo).port}`
    lb = await tlsLb(shopUrl)
    const body = JSON.stringify({ email: ADMIN.email, password: ADMIN.password })
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: lb!.port,
          path: '/api/session',
          method: 'POST',
          ca,
          servername: 'localhost',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        resolve,
      )
      req.on('error', reject)
      req.end(body)
    })
    res.resume()
    expect(res.statusCode).toBe(200)
    const cookie = ([] as string[])
      .concat(res.headers['set-cookie'] ?? [])
      .find((c) => c.startsWith('fleet_sid='))
    expect(cookie).toMatch(/;\s*Secure/i)
    expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/)
  })
})
