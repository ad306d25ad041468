/** Test helpers: real backend HTTP servers on port 0, a load balancer in front, raw-socket requests. */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import net from 'node:net'
import { pino } from 'pino'
import { loadConfig } from '../../src/config/index.js'
import { type LoadBalancer, lbOptionsFromConfig, startLoadBalancer } from '../../src/lb/index.js'
import type { LoadBalancerOptions } from '../../src/lb/options.js'
import type { InstanceState, Registry } from '../../src/registry/registry.js'
import { waitUntil } from '../support/wait.js'

export interface Backend {
  name: string
  url: string
  port: number
  server: http.Server
  /** Requests seen (not counting health checks). */
  hits: number
  /** Health answers /readyz with this status. */
  ready: number
  close(): Promise<void>
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, backend: Backend) => void

/** Echoes method, url, headers and the body size as JSON, with `x-backend: <name>`. */
export const echo: Handler = (req, res, b) => {
  let bytes = 0
  req.on('data', (c: Buffer) => {
    bytes += c.length
  })
  req.on('end', () => {
    const body = JSON.stringify({
      backend: b.name,
      method: req.method,
      url: req.url,
      headers: req.headers,
      bytes,
    })
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-backend': b.name,
    })
    res.end(body)
  })
}

/** A backend on 127.0.0.1:<port or 0>; `/readyz` answers `backend.ready`. */
export async function startBackend(name: string, handler: Handler = echo, port = 0): Promise<Backend> {
  const backend: Backend = {
    name,
    url: '',
    port: 0,
    hits: 0,
    ready: 200,
    server: http.createServer((req, res) => {
      if (req.url === '/readyz' || req.url === '/healthz') {
        res.writeHead(req.url === '/readyz' ? backend.ready : 200).end()
        return
      }
      backend.hits++
      handler(req, res, backend)
    }),
    async close() {
      backend.server.closeAllConnections()
      await new Promise((r) => backend.server.close(r))
    },
  }
  await new Promise<void>((r) => backend.server.listen(port, '127.0.0.1', r))
  backend.port = (backend.server.address() as AddressInfo).port
  backend.url = `http://127.0.0.1:${backend.port}`
  return backend
}

export const silentLogger = pino({ level: 'silent' })

/**
 * The engine the LB suites run on: `FLEET_TEST_LB_ENGINE` (node or haproxy), node by default; what differs
 * on HAProxy is listed in docs/load-balancer.md ("Engines").
 */
export const TEST_ENGINE = (process.env.FLEET_TEST_LB_ENGINE ?? 'node') as 'node' | 'haproxy'

/** Options from the defaults with ports 0, fast health checks, and the given overrides. */
export function testOptions(overrides: Partial<LoadBalancerOptions> = {}): LoadBalancerOptions {
  const config = loadConfig({ env: { FLEET_LOG_LEVEL: 'silent' } })
  return {
    ...lbOptionsFromConfig(config),
    engine: TEST_ENGINE,
    port: 0,
    adminPort: 0,
    host: '127.0.0.1',
    healthIntervalMs: 100,
    healthTimeoutMs: 500,
    slowStartMs: 0,
    shutdownTimeoutMs: 2000,
    ...overrides,
  }
}

export async function startLb(
  overrides: Partial<LoadBalancerOptions> & { haproxyPath?: string } = {},
  registry?: Registry,
): Promise<LoadBalancer> {
  const { haproxyPath, ...rest } = overrides
  return startLoadBalancer({ ...testOptions(rest), logger: silentLogger, registry, haproxyPath })
}

export interface SimpleResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** One request through node:http with a fresh connection; the body is read whole. */
export async function get(
  port: number,
  path = '/',
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

/**
 * Writes `text` on a raw connection and collects everything the server sends until it closes the
 * connection or `idleMs` pass without data.
 */
export async function raw(port: number, text: string | Buffer, idleMs = 500): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' })
    let out = ''
    let timer = setTimeout(() => s.destroy(), idleMs)
    s.on('data', (d: Buffer) => {
      out += d.toString('latin1')
      clearTimeout(timer)
      timer = setTimeout(() => s.destroy(), idleMs)
    })
    s.on('close', () => {
      clearTimeout(timer)
      resolve(out)
    })
    s.on('error', (err) => (out ? undefined : reject(err)))
    s.write(text)
  })
}

/** True when the raw exchange ended with the server closing the connection (not our idle timeout). */
export async function rawClosed(
  port: number,
  text: string,
  idleMs = 1000,
): Promise<{ out: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' })
    let out = ''
    let closed = false
    const timer = setTimeout(() => s.destroy(), idleMs)
    s.on('data', (d: Buffer) => {
      out += d.toString('latin1')
    })
    s.on('end', () => {
      closed = true
    })
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ out, closed })
    })
    s.on('error', () => {})
    s.write(text)
  })
}

/** Polls `fn` until it returns true (at most `ms`, every 20 ms): waitUntil with the LB tests' defaults. */
export function until(fn: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  return waitUntil(what, fn, ms, 20)
}

/** The status of a raw HTTP response text. */
export function statusOf(text: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0)
}

/** Registers backend `b` as a web server in `state` in the registry (as a web server announces itself). */
export async function announceWeb(registry: Registry, b: Backend, state: InstanceState): Promise<void> {
  await registry.announce(
    {
      id: b.name,
      role: 'web',
      url: b.url,
      host: '127.0.0.1',
      pid: process.pid,
      state,
      startedAt: Date.now(),
    },
    60_000,
  )
}
