/**
 * fleet up keeps its stores running: a redis-server or PostgreSQL that dies is started again on the same
 * port and data folder, and one stopped on purpose stays stopped. Real processes, their own ports.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from '../../src/stack/ports.js'
import { EmbeddedPostgres } from '../../src/stack/postgres.js'
import { LocalRedis } from '../../src/stack/redis.js'
import { StoreKeeper, type StoreProcess } from '../../src/stack/store-keeper.js'
import { waitUntil } from '../support/wait.js'

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-keeper-'))
  await fs.chmod(dir, 0o755) // the embedded PostgreSQL runs as user postgres under root
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

function keep(store: StoreProcess, role: 'postgres' | 'redis', port: number, said: string[]): StoreKeeper {
  const keeper = new StoreKeeper(store, {
    role,
    name: role,
    port,
    startedAt: Date.now(),
    say: (line) => said.push(line),
    backoff: { initialMs: 50, maxMs: 500, resetAfterMs: 60_000 },
  })
  keeper.watch()
  cleanups.push(() => keeper.stop(10_000))
  return keeper
}

describe('StoreKeeper', () => {
  it('starts a redis-server that was killed again on its port, and leaves a stopped one stopped', async () => {
    const port = await freePort()
    const redis = new LocalRedis({ role: 'store', dataDir: await tempDir(), port })
    await redis.start()
    const said: string[] = []
    const keeper = keep(redis, 'redis', port, said)
    const first = keeper.pid() as number
    process.kill(first, 'SIGKILL')
    await waitUntil('redis started again', () => keeper.restarts === 1 && keeper.state === 'ready', 15_000)
    expect(keeper.pid()).not.toBe(first)
    const client = new Redis(redis.url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {}) // refused after the stop, as the test expects
    cleanups.push(async () => client.disconnect())
    expect(await client.ping()).toBe('PONG')
    expect(said.join('\n')).toMatch(/redis exited; starting it again in .*\n.*redis is back \(restart 1\)/)

    await keeper.stop(10_000)
    expect(keeper.state).toBe('stopped')
    // fixed wait: nothing starts it again, for three times the 100 ms backoff a restart would now wait.
    await new Promise((r) => setTimeout(r, 300))
    expect(keeper.restarts).toBe(1)
    expect(keeper.pid()).toBeUndefined()
    await expect(client.ping()).rejects.toThrow()
  }, 30_000)

  it('starts PostgreSQL again after its postmaster was killed; the data is still there', async () => {
    const port = await freePort()
    const postgres = new EmbeddedPostgres({ dataDir: await tempDir(), port, database: 'keeper' })
    await postgres.start()
    const said: string[] = []
    const keeper = keep(postgres, 'postgres', port, said)
    const connect = async () => {
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'keeper' })
      await c.connect()
      return c
    }
    const c1 = await connect()
    await c1.query('CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)')
    await c1.end()
    process.kill(keeper.pid() as number, 'SIGKILL')
    // The killed postmaster's backends exit on their own; until then a new start may fail and is retried.
    await waitUntil(
      'PostgreSQL started again',
      () => keeper.restarts === 1 && keeper.state === 'ready',
      60_000,
    )
    const c2 = await connect()
    expect((await c2.query('SELECT v FROM kept')).rows).toEqual([{ v: 42 }])
    await c2.end()
    expect(said.join('\n')).toMatch(/postgres is back \(restart 1\)/)
  }, 90_000)
})
