/**
 * A store Redis that hangs (SIGSTOP: the socket stays open, nothing answers) turns a request that needs it
 * into a coded 503 within FLEET_REDIS_COMMAND_TIMEOUT, never a hang; when Redis resumes, so do sessions.
 * The server stays in a real LB's rotation meanwhile: its /readyz answers `degraded` well within the LB's
 * health check timeout. A real redis-server of the test's own, stopped and continued with real signals.
 */
import fs from 'node:fs/promises'
import type http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LoadBalancer } from '../../src/lb/index.js'
import { freePort } from '../../src/stack/ports.js'
import { LocalRedis } from '../../src/stack/redis.js'
import { get, startLb } from '../lb/helpers.js'
import { createTestApp, type TestApp } from '../support/app.js'
import { waitFor } from '../support/wait.js'

describe('a hung store Redis', () => {
  let dir: string
  let server: LocalRedis
  let t: TestApp
  let lb: LoadBalancer
  let checksAnswered = 0
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-store-hang-'))
    server = new LocalRedis({ role: 'store', dataDir: dir, port: await freePort() })
    await server.start()
    t = await createTestApp(
      [
        async (app) => {
          app.post('/note', async (request) => {
            await request.session.set({ note: 'kept' })
            return { ok: true }
          })
          app.get('/note', async (request) => ({ note: (await request.session.get('note')) ?? null }))
        },
      ],
      // The default command timeout (1 s), the same as the LB's health check timeout.
      { env: { REDIS_URL: server.url } },
    )
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    // The LB's health checks, counted as they are answered (the test's own requests use inject, no socket).
    t.app.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === '/readyz')
        res.once('finish', () => {
          checksAnswered++
        })
    })
    const port = (t.app.server.address() as AddressInfo).port
    // The LB's default health check timeout (1 s), checked often.
    lb = await startLb({
      upstreams: [`http://127.0.0.1:${port}`],
      healthIntervalMs: 200,
      healthTimeoutMs: 1_000,
    })
  })
  afterAll(async () => {
    if (server?.pid) process.kill(server.pid, 'SIGCONT')
    await lb?.close()
    await t?.close()
    await server?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('answers 503 FLEET_E_HTTP_UNAVAILABLE within the command timeout, and recovers', async () => {
    const set = await t.app.inject({ method: 'POST', url: '/note' })
    const cookie = `fleet_sid=${set.cookies.find((c) => c.name === 'fleet_sid')?.value}`
    process.kill(server.pid as number, 'SIGSTOP')
    try {
      const t0 = performance.now()
      const res = await t.app.inject({ method: 'GET', url: '/note', headers: { cookie } })
      const ms = performance.now() - t0
      expect(res.statusCode).toBe(503)
      expect(res.json().error.code).toBe('FLEET_E_HTTP_UNAVAILABLE')
      expect(res.headers['retry-after']).toBeDefined()
      expect(ms).toBeGreaterThanOrEqual(900) // it did wait for Redis, up to the bound
      expect(ms).toBeLessThan(3_000) // and no longer (a hang would be the test's 30 s)
      // Still in rotation for what it can serve without the store Redis: degraded, 200.
      const ready = await t.app.inject({ method: 'GET', url: '/readyz' })
      expect(ready.statusCode).toBe(200)
      expect(ready.json()).toMatchObject({ status: 'degraded', checks: { postgres: 'ok', cache: 'ok' } })
      expect(ready.json().checks.redis).toMatch(/no answer within|timed out|timeout/i)
      // Several health checks later the LB still has it healthy: no check timed out, no panic.
      const answered = checksAnswered
      await waitFor(
        'five more health checks answered',
        async () => (checksAnswered >= answered + 5 ? true : undefined),
        10_000,
      )
      const status = JSON.parse((await get(lb.adminPort, '/status')).body) as {
        panic: boolean
        upstreams: { healthy: boolean }[]
      }
      expect(status.upstreams[0]?.healthy).toBe(true)
      expect(status.panic).toBe(false)
    } finally {
      process.kill(server.pid as number, 'SIGCONT')
    }
    const back = await t.app.inject({ method: 'GET', url: '/note', headers: { cookie } })
    expect(back.json()).toEqual({ note: 'kept' })
  })
})
