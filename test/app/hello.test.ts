/**
 * "Your own service on Fleet": examples/hello/app.ts run by the real stack, as a user would:
 * `node dist/cli.js up --app examples/hello/app.ts` (a TypeScript app, no build step) with an LB, two web
 * servers and a worker, on the test's PostgreSQL and Redis (own schema and key prefix). Checks its cached
 * query, its cached class, its job (started anonymously, followed with the session cookie, its commit
 * invalidating both caches), and prints the time from `fleet up --app` to the first 200.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { createPool } from '../../src/db/pool.js'
import { scratchUpEnv } from '../../src/stack/scratch.js'
import { waitFor } from '../jobs/support.js'
import { dropIsolated, isolatedEnv } from '../support/context.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const cli = path.join(root, 'dist/cli.js')

let dir: string
let base: string
let up: ChildProcess | undefined
let exited: Promise<number | null>
let output = ''
let firstOkMs = 0
const isolated = isolatedEnv()

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-hello-'))
  const env = await scratchUpEnv(dir, {
    ...isolated,
    FLEET_WEB: '2',
    FLEET_WORKERS: '1',
    FLEET_JOB_BACKOFF: '50ms',
  })
  base = `http://127.0.0.1:${env.FLEET_PORT}`
  const t0 = Date.now()
  up = spawn(process.execPath, [cli, 'up', '--app', 'examples/hello/app.ts'], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  for (const s of [up.stdout, up.stderr]) s?.on('data', (c: Buffer) => (output += c.toString()))
  exited = new Promise((resolve) => up?.once('exit', (code) => resolve(code)))
  await waitFor(
    'the first 200 of /hello/en through the LB',
    async () => ((await fetch(`${base}/hello/en`).catch(() => undefined))?.status === 200 ? true : undefined),
    90_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${output.slice(-3000)}`)
  })
  firstOkMs = Date.now() - t0
  console.log(`fleet up --app examples/hello/app.ts: first 200 after ${firstOkMs} ms`)
  // Every process replaces the cache's epoch once as it starts (everything misses once): the checks below
  // begin when all of them are up, not at the first 200 (the worker may still be starting then).
  await waitFor('fleet is up', async () => (output.includes('fleet is up in') ? true : undefined), 90_000)
}, 120_000)

afterAll(async () => {
  if (up && up.exitCode === null) {
    up.kill('SIGTERM')
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000))])
    if (code === 'timeout') up.kill('SIGKILL')
  }
  await dropIsolated(isolated)
  await fs.rm(dir, { recursive: true, force: true })
}, 90_000)

describe('examples/hello on the whole stack', () => {
  it('applies its migration after Fleet’s own and announces the app', async () => {
    expect(output).toMatch(/migrations: \d+ applied, 0 already in place \(app hello\)/)
    const config = loadConfig({ env: isolated })
    const pool = createPool(config)
    try {
      const { rows } = await pool.query<{ id: string }>(
        `SELECT id FROM ${config.dbSchema}.fleet_migrations ORDER BY applied_at, id`,
      )
      expect(rows.map((r) => r.id)).toEqual(['005_jobs', '001_hello_greetings'])
    } finally {
      await pool.end()
    }
  })

  it('serves its cached query: MISS, then HIT from any web server', async () => {
    const first = await fetch(`${base}/hello/en`)
    expect(first.status).toBe(200)
    expect(await first.json()).toEqual({ greetings: ['Hello', 'Hi'] })
    const servers = new Set<string>()
    const statuses: string[] = []
    // A web server that just joined is in the LB's slow start (few requests at first), or not yet found by
    // its discovery (every second): ask until both answered, for 20 s at most.
    const deadline = Date.now() + 20_000
    for (let i = 0; i < 6 || (servers.size < 2 && Date.now() < deadline); i++) {
      const res = await fetch(`${base}/hello/en`)
      servers.add(res.headers.get('x-served-by') ?? '')
      statuses.push(res.headers.get('x-cache') ?? '')
      await res.arrayBuffer()
    }
    expect(statuses.every((s) => s === 'HIT')).toBe(true)
    expect(servers.size).toBe(2)
  })

  it('serves its cached class, read back as an instance (its method answers)', async () => {
    const a = await fetch(`${base}/hello/fr/card`)
    expect(await a.json()).toEqual({ first: 'Bonjour', share: '1 of 3 greetings' })
    const b = await fetch(`${base}/hello/fr/card`)
    expect(b.headers.get('x-cache')).toBe('HIT')
    expect(await b.json()).toEqual({ first: 'Bonjour', share: '1 of 3 greetings' })
  })

  it('runs its job: 202 at once, followed by the same browser, its commit invalidates both caches', async () => {
    await (await fetch(`${base}/hello/loud`)).arrayBuffer() // cached empty before the job
    const started = await fetch(`${base}/hello/shout`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'hey there' }),
    })
    expect(started.status).toBe(202)
    const location = started.headers.get('location') ?? ''
    expect(location).toMatch(/^\/api\/jobs\/hello\.shout-/)
    const cookie = (started.headers.get('set-cookie') ?? '').split(';')[0]
    expect(cookie).toMatch(/^fleet_sid=/)

    expect((await fetch(`${base}${location}`)).status).toBe(401) // no session: not yours to see
    const done = await waitFor(
      'the job completed',
      async () => {
        const view = (await (await fetch(`${base}${location}`, { headers: { cookie } })).json()) as {
          state: string
          result?: unknown
        }
        return view.state === 'completed' ? view : undefined
      },
      30_000,
    )
    expect(done.result).toEqual({ text: 'HEY THERE' })

    const loud = await fetch(`${base}/hello/loud`)
    expect(loud.headers.get('x-cache')).toBe('MISS')
    expect(await loud.json()).toEqual({ greetings: ['HEY THERE'] })
    const card = await fetch(`${base}/hello/fr/card`)
    expect(await card.json()).toEqual({ first: 'Bonjour', share: '1 of 4 greetings' })
  })

  it('refuses a bad payload with a coded 400, and another visitor sees no job', async () => {
    const bad = await fetch(`${base}/hello/shout`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: '' }),
    })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe(
      'FLEET_E_JOBS_INVALID_PAYLOAD',
    )

    const mine = await fetch(`${base}/hello/shout`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'mine' }),
    })
    const location = mine.headers.get('location') ?? ''
    const other = await fetch(`${base}/hello/shout`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'theirs' }),
    })
    const otherCookie = (other.headers.get('set-cookie') ?? '').split(';')[0]
    expect((await fetch(`${base}${location}`, { headers: { cookie: otherCookie } })).status).toBe(404)
  })

  it('stops cleanly on SIGTERM', async () => {
    up?.kill('SIGTERM')
    expect(await exited).toBe(0)
  }, 90_000)
})
