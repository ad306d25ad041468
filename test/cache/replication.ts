/**
 * Real redis-server processes for the failover tests: a primary and replicas this test starts on free
 * loopback ports in its own folder, and an address that moves from one server to another (what a virtual IP,
 * a DNS name or a TCP load balancer in front of Redis does at a failover). No Redis is mocked: the address is
 * a plain TCP forwarder, and every byte comes from the server it points at.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { Redis } from 'ioredis'
import type { CacheStatus } from '../../src/cache/index.js'
import { unflaggedScripts } from '../../src/cache/scripts.js'
import { freePort } from '../../src/stack/ports.js'
import { exited } from '../support/processes.js'
import { testRedisArgs } from '../support/redis-server.js'
import { waitFor } from '../support/wait.js'
import type { Server } from './support.js'

export interface RedisProcess {
  readonly port: number
  readonly url: string
  readonly pid: number
  /** A plain connection to this server (not through the moving address): the test's own. */
  readonly admin: Redis
  /** SIGKILL (a host's power cut), and waits for the exit. */
  kill(): Promise<void>
}

/**
 * Starts a cache-like redis-server (LRU, no persistence: a restart comes back empty) in `dir/<name>`, on
 * `port` (a free one when not given); `replicaOf` makes it a replica of that port.
 */
export async function startRedis(
  dir: string,
  name: string,
  options: { port?: number; replicaOf?: number } = {},
): Promise<RedisProcess> {
  const port = options.port ?? (await freePort())
  const data = path.join(dir, name)
  await fs.mkdir(data, { recursive: true })
  const args = [
    ...testRedisArgs(port, data, options.replicaOf),
    '--maxmemory',
    String(64 * 1024 * 1024),
    '--maxmemory-policy',
    'allkeys-lru',
    '--repl-diskless-sync-delay',
    '0',
  ]
  const child: ChildProcess = spawn('/usr/bin/redis-server', args, { stdio: 'ignore' })
  const pid = child.pid as number
  const admin = plainConnection(port)
  await waitFor('redis-server to answer', async () => ((await admin.ping()) === 'PONG' ? true : undefined))
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid,
    admin,
    async kill() {
      admin.disconnect()
      if (!exited(pid)) process.kill(pid, 'SIGKILL')
      await waitFor('redis-server to exit', async () => (exited(pid) ? true : undefined), 10_000)
    },
  }
}

/** A connection of the test's own to 127.0.0.1:`port` (connects at its first command). */
export function plainConnection(port: number): Redis {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 })
  r.on('error', () => {})
  return r
}

/** One field of INFO replication. */
export async function replicationField(redis: Redis, field: string): Promise<string | undefined> {
  const info = await redis.info('replication')
  return new RegExp(`^${field}:(.*)\\r?$`, 'm').exec(info)?.[1]?.trim()
}

/**
 * Waits until `replica` is linked to `primary` on its current history and has processed everything the primary
 * had written when this was called (replication offsets: WAIT counts only the calling connection's writes).
 */
export async function waitInSync(primary: Redis, replica: Redis): Promise<void> {
  const target = Number(await replicationField(primary, 'master_repl_offset'))
  const replid = await replicationField(primary, 'master_replid')
  await waitFor('the replica to be in sync', async () => {
    if ((await replicationField(replica, 'master_link_status')) !== 'up') return undefined
    if ((await replicationField(replica, 'master_replid')) !== replid) return undefined
    return Number(await replicationField(replica, 'slave_repl_offset')) >= target ? true : undefined
  })
}

/**
 * The cache entries under `prefix` on `redis` (a primary or a replica) that the read script would serve as
 * fresh right now: what a process reading there without a history check would take as valid. Each is the
 * payload (msgpack).
 */
export async function validEntries(redis: Redis, prefix: string): Promise<Buffer[]> {
  const out: Buffer[] = []
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}{cache}:e:*`, 'COUNT', 1000)
    cursor = next
    for (const key of keys) {
      // Without the `#!lua` line, which makes a replica refuse it.
      const r = await unflaggedScripts.read.runBuffer(redis, [key], [0, '', ''])
      if (Buffer.isBuffer(r)) out.push(r)
    }
  } while (cursor !== '0')
  return out
}

/** A TCP address that forwards to one Redis port, and can be moved to another (a virtual IP's failover). */
export interface MovingAddress {
  readonly port: number
  readonly url: string
  /** New connections go to `port`; the open ones stay where they are until their server closes them. */
  moveTo(port: number): void
  close(): Promise<void>
}

export async function movingAddress(target: number): Promise<MovingAddress> {
  let to = target
  const open = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(to, '127.0.0.1')
    open.add(client)
    open.add(upstream)
    const done = () => {
      client.destroy()
      upstream.destroy()
      open.delete(client)
      open.delete(upstream)
    }
    for (const s of [client, upstream]) {
      s.on('error', done)
      s.on('close', done)
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    moveTo(p) {
      to = p
    },
    async close() {
      for (const s of open) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

export const BY_ID = 'SELECT id, name FROM products WHERE id = $1'

export interface Reads {
  total: number
  stale: number
  byStatus: Record<CacheStatus, number>
}

/**
 * Reads every product through the servers' caches in `loops` concurrent loops (each pausing `pauseMs` after a
 * pass) until `stop()` resolves; a read is stale when it returns a name that is not `renamed <id>` (every read
 * here begins after that write).
 */
export function readAll(servers: Server[], products: number[], loops = 8, pauseMs = 5) {
  const reads: Reads = { total: 0, stale: 0, byStatus: { HIT: 0, STALE: 0, MISS: 0, BYPASS: 0 } }
  let running = true
  const loop = async (i: number) => {
    const s = servers[i % servers.length] as Server
    while (running) {
      for (const id of products) {
        const r = await s.cache.query<{ name: string }>(BY_ID, [id])
        reads.total++
        reads.byStatus[r.status]++
        if (r.rows[0]?.name !== `renamed ${id}`) reads.stale++
      }
      // A pause after each pass leaves CPU to the other test files running beside this one.
      await new Promise((resolve) => setTimeout(resolve, pauseMs))
    }
  }
  const done = Promise.all(Array.from({ length: loops }, (_, i) => loop(i)))
  const ended = done.then(() => {
    throw new Error('the read loops ended')
  })
  ended.catch(() => {}) // awaited by `more` only
  return {
    reads,
    /**
     * Resolves once `n` more reads than now have returned `status` (any status when not given): a phase of the
     * load has happened. Rejects when a read loop fails, or after `timeoutMs`.
     */
    async more(n: number, status?: CacheStatus, timeoutMs = 20_000): Promise<void> {
      const count = () => (status ? reads.byStatus[status] : reads.total)
      const target = count() + n
      await Promise.race([
        waitFor(
          `${n} more ${status ?? 'cache'} reads`,
          async () => (count() >= target ? true : undefined),
          timeoutMs,
        ),
        ended,
      ])
    },
    /** Ends the loops; resolves with the reads so far. */
    async stop(): Promise<Reads> {
      running = false
      await done
      return reads
    },
  }
}

/** A copy of the counts, to compare two phases. */
export function snapshot(r: Reads): Reads {
  return { total: r.total, stale: r.stale, byStatus: { ...r.byStatus } }
}
