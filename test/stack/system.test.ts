/**
 * The whole stack, as a user runs it: `node dist/cli.js up` (built by `pretest`) on free ports and a fresh
 * data folder, with the embedded PostgreSQL and two redis-servers it starts itself. Checks the answers come
 * from several web servers, a login session that follows the user across servers, the supervisor bringing
 * back a killed web server and a killed PostgreSQL, a clean ordered stop, and that a second `fleet up` finds the data of the first.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StatusReport } from '../../src/stack/status.js'
import { alive, killMarkedAndRemove } from '../support/processes.js'
import { quickStack } from '../support/stack.js'

const run = promisify(execFile)
const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

interface Up {
  proc: ChildProcess
  output: () => string
  exited: Promise<number | null>
}

let dir: string
let env: NodeJS.ProcessEnv
let base: string
const running: Up[] = []
const seenPids = new Set<number>()

function startUp(): Up {
  const proc = spawn(process.execPath, [cli, 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout?.on('data', (c: Buffer) => {
    out += c.toString()
  })
  proc.stderr?.on('data', (c: Buffer) => {
    out += c.toString()
  })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  const up = { proc, output: () => out, exited }
  running.push(up)
  return up
}

async function status(): Promise<StatusReport> {
  const { stdout } = await run(process.execPath, [cli, 'status', '--json'], { env })
  const report = JSON.parse(stdout) as StatusReport
  for (const r of report.rows) if (r.pid) seenPids.add(r.pid)
  return report
}

/** Polls `fn` until it returns a value (not undefined) or `ms` passed. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, ms: number, up?: Up): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${ms} ms\n${up?.output().slice(-3000) ?? ''}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** Waits for the first 200 through the LB; returns the ms it took since `t0`. */
async function firstOk(up: Up, t0: number): Promise<number> {
  await until(
    'the stack answering 200 through the LB',
    async () => ((await fetch(`${base}/api/categories`)).status === 200 ? true : undefined),
    90_000,
    up,
  )
  return Date.now() - t0
}

async function stop(up: Up): Promise<number | null> {
  up.proc.kill('SIGTERM')
  const code = await Promise.race([
    up.exited,
    new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000)),
  ])
  if (code === 'timeout') throw new Error(`fleet up did not stop within 60 s\n${up.output().slice(-3000)}`)
  return code
}

/** SIGKILLs the process `name` of `report`, then waits until the status shows it ready under a new pid. */
async function killAndWaitBack(report: StatusReport, name: string, ms: number, up: Up) {
  const victim = report.rows.find((r) => r.name === name)
  expect(victim?.pid).toBeGreaterThan(0)
  process.kill(victim?.pid as number, 'SIGKILL')
  return until(
    `${name} back after SIGKILL`,
    async () => {
      const row = (await status()).rows.find((r) => r.name === name)
      return row && row.state === 'ready' && row.pid !== victim?.pid ? row : undefined
    },
    ms,
    up,
  )
}

function cookieOf(res: Response): string {
  const set = res.headers.getSetCookie()
  expect(set.length).toBeGreaterThan(0)
  return set.map((c) => c.split(';')[0]).join('; ')
}

beforeAll(async () => {
  ;({ dir, env } = await quickStack('system'))
  base = `http://127.0.0.1:${env.FLEET_PORT}`
})

afterAll(async () => {
  for (const up of running)
    if (up.proc.exitCode === null && up.proc.signalCode === null) up.proc.kill('SIGKILL')
  // Only processes of this test: a pid seen earlier may belong to another program by now.
  const marks = [dir, cli, `:${env.FLEET_REDIS_PORT}`, `:${env.FLEET_CACHE_REDIS_PORT}`]
  await killMarkedAndRemove(seenPids, marks, dir)
})

describe('fleet up (system)', () => {
  const email = `system-${Date.now()}@example.com`
  const password = 'correct horse battery staple'
  let cookie = ''
  let productId = 0

  it('starts, serves from several web servers, keeps a session across them, revives a killed server and a killed PostgreSQL, stops cleanly, and keeps its data', async () => {
    // 1. A fresh start.
    const t0 = Date.now()
    const first = startUp()
    const freshMs = await firstOk(first, t0)
    console.log(`first 200 through the LB, fresh data folder: ${freshMs} ms`)
    const report = await until(
      'every child ready',
      async () => {
        const s = await status()
        return s.phase === 'running' && s.rows.every((r) => r.state === 'ready') ? s : undefined
      },
      60_000,
      first,
    )
    expect(report.rows.filter((r) => r.role === 'web')).toHaveLength(3)
    expect(report.rows.map((r) => r.name).sort()).toEqual(
      [
        'lb-1',
        'postgres',
        'redis-cache',
        'redis-store',
        'supervisor',
        'web-1',
        'web-2',
        'web-3',
        'worker-1',
      ].sort(),
    )
    const { stdout: table } = await run(process.execPath, [cli, 'status'], { env })
    expect(table).toMatch(/ROLE\s+NAME\s+PID\s+PORT\s+STATE\s+RESTARTS\s+UPTIME/)
    console.log(table)

    // 1b. A second fleet up on the same folder is refused and touches nothing of the running stack: its
    // control socket and pid records stay, `fleet status` still finds it, and it still answers.
    const dataDir = String(env.FLEET_DATA_DIR)
    const refused = (await run(process.execPath, [cli, 'up'], { env, timeout: 60_000 }).then(
      () => undefined,
      (e: unknown) => e,
    )) as { code: number; stderr: string } | undefined
    expect(refused?.stderr).toContain('[FLEET_E_STACK_ALREADY_RUNNING]')
    expect(existsSync(path.join(dataDir, 'fleet.sock'))).toBe(true)
    expect(existsSync(path.join(dataDir, 'children.json'))).toBe(true)
    const after = await status()
    expect(after.rows.map((r) => [r.name, r.pid, r.state])).toEqual(
      report.rows.map((r) => [r.name, r.pid, r.state]),
    )
    for (let i = 0; i < 10; i++) expect((await fetch(`${base}/api/categories`)).status).toBe(200)

    // 1c. The operator commands run beside it use its stores, found through its data folder (no URL given).
    expect(Object.keys(env).filter((k) => k.endsWith('_URL'))).toEqual([])
    const migrated = await run(process.execPath, [cli, 'migrate'], { env })
    expect(migrated.stdout).toMatch(/migrations: 0 applied, \d+ already in place/)
    const jobs = JSON.parse((await run(process.execPath, [cli, 'jobs', 'stats', '--json'], { env })).stdout)
    expect(jobs).toBeTypeOf('object')
    const cache = JSON.parse(
      (await run(process.execPath, [cli, 'cache', 'stats', '--json'], { env })).stdout,
    ) as {
      keys: { entries: number }
    }
    expect(cache.keys.entries).toBeGreaterThan(0) // the stack's cache Redis, not 127.0.0.1:6379

    // 2. Several servers answer.
    const servedBy = new Set<string>()
    for (let i = 0; i < 30 && servedBy.size < 3; i++) {
      const res = await fetch(`${base}/api/products?limit=5`)
      expect(res.status).toBe(200)
      const body = (await res.json()) as { items: { id: number }[] }
      productId = body.items[0].id
      servedBy.add(res.headers.get('x-served-by') ?? '')
    }
    expect(servedBy.size).toBeGreaterThanOrEqual(2)

    // 3. An account, a login, and a session that every server knows.
    const created = await fetch(`${base}/api/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password }),
    })
    expect(created.status).toBe(201)
    const login = await fetch(`${base}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password }),
    })
    expect(login.status).toBe(200)
    cookie = cookieOf(login)
    const put = await fetch(`${base}/api/cart/items/${productId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', cookie },
      body: JSON.stringify({ quantity: 2 }),
    })
    expect(put.status).toBe(200)
    const meServers = new Set<string>()
    for (let i = 0; i < 30 && meServers.size < 3; i++) {
      const me = await fetch(`${base}/api/me`, { headers: { cookie } })
      expect(me.status).toBe(200)
      expect(((await me.json()) as { email: string }).email).toBe(email)
      const cart = await fetch(`${base}/api/cart`, { headers: { cookie } })
      const items = ((await cart.json()) as { items: { productId: number; quantity: number }[] }).items
      expect(items).toContainEqual(expect.objectContaining({ productId, quantity: 2 }))
      meServers.add(me.headers.get('x-served-by') ?? '')
      meServers.add(cart.headers.get('x-served-by') ?? '')
    }
    expect(meServers.size).toBeGreaterThanOrEqual(2)

    // 4. `fleet restart web` under load: every web server replaced, one at a time, and no request fails.
    const webPids = report.rows.filter((r) => r.role === 'web').map((r) => r.pid)
    let loading = true
    let ok = 0
    const failures: string[] = []
    const load = Array.from({ length: 6 }, async (_, n) => {
      while (loading) {
        const res = await (n % 2 === 0
          ? fetch(`${base}/api/products?limit=5`)
          : fetch(`${base}/api/cart/items/${productId}`, {
              method: 'PUT',
              headers: { 'content-type': 'application/json', cookie },
              body: JSON.stringify({ quantity: 2 }),
            })
        ).catch((err: Error) => err)
        if (res instanceof Error) failures.push(res.message)
        else {
          await res.arrayBuffer()
          if (res.status === 200) ok++
          else failures.push(`${res.status} from ${res.headers.get('x-served-by')}`)
        }
      }
    })
    const restart = await run(process.execPath, [cli, 'restart', 'web'], { env }).finally(() => {
      loading = false
    })
    await Promise.all(load)
    expect(restart.stdout).toContain('restarted 3 processes of web')
    expect(failures).toEqual([])
    expect(ok).toBeGreaterThan(50)
    const afterRestart = await status()
    for (const r of afterRestart.rows.filter((x) => x.role === 'web')) {
      expect(r.state).toBe('ready')
      expect(webPids).not.toContain(r.pid)
    }
    console.log(`rolling restart under load: ${ok} requests, ${failures.length} failed\n${restart.stdout}`)
    // A worker is in no LB rotation: its restart waits for its own readiness only, never for the LB.
    const workerRestart = await run(process.execPath, [cli, 'restart', 'worker'], { env })
    expect(workerRestart.stdout).toContain('restarted 1 process of worker')
    expect(workerRestart.stdout).not.toContain('the load balancer did not list it')

    // 5. SIGKILL a web server, then PostgreSQL: the supervisor brings each back (same name and port).
    const back = await killAndWaitBack(afterRestart, 'web-2', 30_000, first)
    expect(back.restarts).toBe(1)
    expect(back.lastExit).toBe('signal SIGKILL')
    expect((await fetch(`${base}/api/me`, { headers: { cookie } })).status).toBe(200)

    const pgBack = await killAndWaitBack(await status(), 'postgres', 60_000, first)
    expect(pgBack.restarts).toBe(1)
    // A login reads the users table: 503 while PostgreSQL is away, then an answer (wrong password: 401).
    await until(
      'a login answered by PostgreSQL again',
      async () => {
        const res = await fetch(`${base}/api/session`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: 'nobody-here@example.com', password: 'not-the-password' }),
        })
        return res.status === 401 ? true : undefined
      },
      30_000,
      first,
    )

    // 6. SIGTERM: an ordered stop, exit 0, every process gone.
    const last = await status()
    const pids = last.rows.map((r) => r.pid).filter((p): p is number => p !== undefined)
    expect(pids.length).toBe(9)
    expect(await stop(first)).toBe(0)
    const out = first.output()
    expect(out.indexOf('stopping load balancer')).toBeLessThan(out.indexOf('stopping web servers'))
    expect(out.indexOf('stopping web servers')).toBeLessThan(out.indexOf('stopping workers'))
    expect(out.indexOf('stopping workers')).toBeLessThan(out.indexOf('stopping postgres'))
    for (const pid of pids) expect(alive(pid), `pid ${pid} still runs`).toBe(false)
    expect(existsSync(path.join(dir, 'data', 'fleet.sock'))).toBe(false)
    await expect(run(process.execPath, [cli, 'status'], { env })).rejects.toMatchObject({ code: 1 })

    // 7. A second start on the same data folder finds the product, the account and the session.
    const t1 = Date.now()
    const second = startUp()
    const warmMs = await firstOk(second, t1)
    console.log(`first 200 through the LB, warm data folder: ${warmMs} ms`)
    expect(second.output()).not.toContain('seeding')
    const product = await fetch(`${base}/api/products/${productId}`)
    expect(product.status).toBe(200)
    const me = await fetch(`${base}/api/me`, { headers: { cookie } })
    expect(me.status).toBe(200)
    expect(((await me.json()) as { email: string }).email).toBe(email)
    const cart = await fetch(`${base}/api/cart`, { headers: { cookie } })
    expect(((await cart.json()) as { items: { productId: number }[] }).items).toContainEqual(
      expect.objectContaining({ productId, quantity: 2 }),
    )
    await status()
    expect(await stop(second)).toBe(0)
  }, 180_000)
})
