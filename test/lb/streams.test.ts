/** Bodies streamed both ways (1 GB each), client aborts freeing everything, WebSocket through the LB. */
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import { Readable } from 'node:stream'
import v8 from 'node:v8'
import vm from 'node:vm'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import type { LoadBalancer } from '../../src/lb/index.js'
import { type Backend, get, startBackend, startLb, until } from './helpers.js'

const GB = 1024 ** 3

/** A full garbage collection, so heap figures show what is retained rather than what is not yet collected. */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc')
  ;(vm.runInNewContext('gc') as () => void)()
}
const CHUNK = Buffer.alloc(256 * 1024, 'x')

/** `total` bytes of generated data, never held whole (one chunk reused). */
function generated(total: number): Readable {
  let left = total
  return new Readable({
    read() {
      if (left <= 0) {
        this.push(null)
        return
      }
      const n = Math.min(left, CHUNK.length)
      left -= n
      this.push(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))
    },
  })
}

describe('load balancer: streaming, aborts, upgrades', () => {
  const backends: Backend[] = []
  let lb: LoadBalancer | undefined

  afterEach(async () => {
    await lb?.close()
    lb = undefined
    await Promise.all(backends.splice(0).map((b) => b.close()))
  })

  it('streams a 1 GB upload and a 1 GB download without holding them', async () => {
    const b = await startBackend('big', (req, res) => {
      if (req.method === 'POST') {
        let n = 0
        req.on('data', (c: Buffer) => {
          n += c.length
        })
        req.on('end', () => res.end(String(n)))
        return
      }
      res.writeHead(200, { 'content-length': String(GB) })
      generated(GB).pipe(res)
    })
    backends.push(b)
    lb = await startLb({ upstreams: [b.url], maxBodySize: 2 * GB })
    const rssBefore = process.memoryUsage().rss
    let rssPeak = rssBefore
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
    }, 50)
    try {
      const up = await new Promise<string>((resolve, reject) => {
        const req = http.request(
          {
            port: lb!.port,
            host: '127.0.0.1',
            method: 'POST',
            path: '/up',
            headers: { 'content-length': String(GB) },
          },
          (res) => {
            let text = ''
            res.on('data', (c: Buffer) => {
              text += c.toString()
            })
            res.on('end', () => resolve(text))
          },
        )
        req.on('error', reject)
        generated(GB).pipe(req)
      })
      expect(up).toBe(String(GB))
      const down = await new Promise<number>((resolve, reject) => {
        http
          .get({ port: lb!.port, host: '127.0.0.1', path: '/down' }, (res) => {
            let n = 0
            res.on('data', (c: Buffer) => {
              n += c.length
            })
            res.on('end', () => resolve(n))
          })
          .on('error', reject)
      })
      expect(down).toBe(GB)
    } finally {
      clearInterval(sampler)
    }
    // Client, LB and backend share this process: far less than the 2 GB that went through.
    expect(rssPeak - rssBefore).toBeLessThan(200 * 1024 ** 2)
  }, 60_000)

  it('10,000 aborted requests leave no sockets, in-flight counts or upstream requests behind', async () => {
    let aborted = 0
    const b = await startBackend('hold', (req, res) => {
      req.resume()
      res.once('close', () => {
        if (!res.writableFinished) aborted++
      })
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('first chunk')
      }
    })
    backends.push(b)
    // Health checks far apart: under this connection churn on a loaded machine they could time out.
    lb = await startLb({ upstreams: [b.url], healthIntervalMs: 60_000, healthTimeoutMs: 10_000 })
    collectGarbage()
    const heapBefore = process.memoryUsage().heapUsed
    const BATCH = 250
    for (let round = 0; round < 40; round++) {
      const target = b.hits + BATCH
      const sockets: net.Socket[] = []
      for (let i = 0; i < BATCH; i++) {
        const s = net.connect({ port: lb.port, host: '127.0.0.1' })
        s.on('error', () => {})
        s.write(`GET ${i % 2 === 0 ? '/stream' : '/hold'} HTTP/1.1\r\nHost: x\r\n\r\n`)
        sockets.push(s)
      }
      await until(() => b.hits >= target, 10_000, `round ${round} reached the backend`)
      for (const s of sockets) s.destroy()
    }
    await until(() => aborted === 10_000, 10_000, 'every upstream request aborted')
    expect(lb.upstreams.all()[0].inflight).toBe(0)
    await until(
      async () => JSON.parse((await get(lb!.adminPort, '/status')).body).clientConnections === 0,
      5000,
      'client connections closed',
    )
    // The backend learns of each aborted upstream socket asynchronously: wait (bounded) for the closes.
    const backendConnections = () =>
      new Promise<number>((r, j) => b.server.getConnections((err, n) => (err ? j(err) : r(n))))
    await until(async () => (await backendConnections()) < 10, 5000, 'upstream sockets closed')
    expect(await backendConnections()).toBeLessThan(10)
    // Retained after a full collection: anything kept per request would show (10,000 x 2 kB = 20 MB).
    collectGarbage()
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(10 * 1024 ** 2)
    const metrics = (await get(lb.adminPort, '/metrics')).body
    expect(metrics).toMatch(/fleet_lb_client_aborts_total 10000/)
  }, 60_000)

  it('passes WebSocket upgrades through (echo)', async () => {
    const b = await startBackend('ws')
    backends.push(b)
    const wss = new WebSocketServer({ server: b.server })
    wss.on('connection', (ws, req) => {
      ws.send(`hello ${req.headers['x-forwarded-for']}`)
      ws.on('message', (data, binary) => ws.send(data, { binary }))
    })
    lb = await startLb({ upstreams: [b.url] })
    const ws = new WebSocket(`ws://127.0.0.1:${lb.port}/chat`)
    const messages: string[] = []
    ws.on('message', (d: Buffer) => messages.push(d.toString()))
    await once(ws, 'open')
    ws.send('one')
    ws.send('two')
    const big = 'y'.repeat(1024 * 1024)
    ws.send(big)
    await until(() => messages.length === 4, 5000, 'echoes')
    expect(messages.slice(0, 3)).toEqual(['hello 127.0.0.1', 'one', 'two'])
    expect(messages[3].length).toBe(big.length)
    ws.close()
    await once(ws, 'close')
    await until(() => lb!.upstreams.all()[0].inflight === 0, 3000, 'tunnel closed')
    wss.close()
  })

  it('answers 502 to an upgrade when the upstream is gone', async () => {
    const b = await startBackend('gone')
    const url = b.url
    await b.close()
    lb = await startLb({ upstreams: [url], healthIntervalMs: 60_000 })
    const ws = new WebSocket(`ws://127.0.0.1:${lb.port}/chat`)
    const [err] = (await once(ws, 'error')) as [Error]
    expect(err.message).toMatch(/502/)
  })
})
