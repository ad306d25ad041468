/**
 * A PostgreSQL that hangs (SIGSTOP of the postmaster and every backend: sockets stay open, nothing answers)
 * turns a request that needs it into a coded 503 within FLEET_DB_QUERY_TIMEOUT / FLEET_DB_CONNECT_TIMEOUT,
 * never a hang, while cached reads go on; when it resumes, so do queries. A real PostgreSQL of the test's
 * own, stopped and continued with real signals.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defineQuery } from '../../src/cache/cached-query.js'
import { freePort } from '../../src/stack/ports.js'
import { EmbeddedPostgres } from '../../src/stack/postgres.js'
import { createTestApp, type TestApp } from '../support/app.js'
import { signalTree } from '../support/processes.js'

const categories = defineQuery<{ n: number }>({
  name: 'test.category-count',
  sql: 'SELECT count(*)::int AS n FROM categories',
})

describe('a hung PostgreSQL', () => {
  let dir: string
  let postgres: EmbeddedPostgres
  let t: TestApp
  let stopped = false
  const stop = () => {
    signalTree(postgres.pid as number, 'SIGSTOP')
    stopped = true
  }
  const resume = () => {
    if (stopped) signalTree(postgres.pid as number, 'SIGCONT')
    stopped = false
  }

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-db-hang-'))
    await fs.chmod(dir, 0o755) // the embedded PostgreSQL runs as user postgres under root
    postgres = new EmbeddedPostgres({
      dataDir: path.join(dir, 'pg'),
      port: await freePort(),
      database: 'hang',
    })
    await postgres.start()
    t = await createTestApp(
      [
        async (app, deps) => {
          app.get(
            '/count',
            async () => (await deps.db.query('SELECT count(*)::int AS n FROM products')).rows[0],
          )
          app.post('/tx', async () =>
            deps.db.transaction(async (tx) => {
              await tx.query('SELECT 1')
              return { ok: true }
            }),
          )
          app.get('/cached', async () => {
            const { rows, status } = await deps.cache.run(categories, [])
            return { n: rows[0]?.n, status }
          })
          app.get('/plain', async () => ({ ok: true }))
        },
      ],
      {
        env: {
          DATABASE_URL: postgres.url,
          FLEET_DB_QUERY_TIMEOUT: '500ms',
          FLEET_DB_CONNECT_TIMEOUT: '500ms',
          FLEET_DB_POOL_MAX: '2',
        },
      },
    )
  }, 120_000)
  afterAll(async () => {
    resume()
    await t?.close()
    await postgres?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  async function timed(method: 'GET' | 'POST', url: string) {
    const t0 = performance.now()
    const res = await t.app.inject({ method, url })
    return { res, ms: performance.now() - t0 }
  }

  it('answers 503 FLEET_E_DB_UNAVAILABLE within the bound, serves what needs no query, and recovers', async () => {
    expect((await timed('GET', '/count')).res.json()).toEqual({ n: 0 })
    expect((await timed('GET', '/cached')).res.json()).toMatchObject({ n: 0, status: 'MISS' })
    stop()
    try {
      // An idle pooled connection: the query is sent and never answered (FLEET_DB_QUERY_TIMEOUT).
      // Then a new connection that never completes its start-up (FLEET_DB_CONNECT_TIMEOUT), a transaction
      // (no ROLLBACK waiting behind the unanswered BEGIN), and the pool full of neither.
      for (const [method, url] of [
        ['GET', '/count'],
        ['POST', '/tx'],
        ['GET', '/count'],
        ['GET', '/count'],
      ] as const) {
        const { res, ms } = await timed(method, url)
        expect(res.statusCode, `${method} ${url}`).toBe(503)
        expect(res.json().error.code).toBe('FLEET_E_DB_UNAVAILABLE')
        expect(res.headers['retry-after']).toBeDefined()
        expect(ms).toBeGreaterThanOrEqual(400) // it did wait for PostgreSQL, up to the bound
        expect(ms, `${method} ${url} waited`).toBeLessThan(2_000) // and no longer (a hang: the test's 30 s)
      }
      // What needs no query still answers, a cached read included; the server stays in rotation.
      expect((await timed('GET', '/plain')).res.statusCode).toBe(200)
      expect((await timed('GET', '/cached')).res.json()).toMatchObject({ n: 0, status: 'HIT' })
      const ready = await timed('GET', '/readyz')
      expect(ready.res.statusCode).toBe(200)
      expect(ready.res.json()).toMatchObject({ status: 'degraded', checks: { redis: 'ok', cache: 'ok' } })
      expect(ready.res.json().checks.postgres).not.toBe('ok')
    } finally {
      resume()
    }
    // The timed-out connections were closed, not reused: the next query gets a fresh one and an answer.
    const back = await timed('GET', '/count')
    expect(back.res.statusCode).toBe(200)
    expect(back.res.json()).toEqual({ n: 0 })
    expect((await timed('POST', '/tx')).res.json()).toEqual({ ok: true })
  }, 60_000)
})
