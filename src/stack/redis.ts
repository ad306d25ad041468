/**
 * The local stack's redis-server processes. The store keeps every acknowledged write (AOF, fsync every
 * second, no eviction); the cache has a memory cap with LRU eviction and AOF so it is warm after a restart.
 * `redis-server` comes from PATH; under root it is installed with apt-get when missing.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Redis } from 'ioredis'
import { ServiceStartError } from './errors.js'
import { ensureProgram } from './programs.js'

export type RedisRole = 'store' | 'cache'

export interface LocalRedisOptions {
  role: RedisRole
  dataDir: string
  port: number
  /** Cache only: memory cap in bytes (allkeys-lru evicts past it). */
  maxMemory?: number
  onLog?: (line: string) => void
}

/** The redis-server settings of each role, as DESIGN.md gives them. */
export function redisArgs(o: LocalRedisOptions): string[] {
  const common = [
    '--port',
    String(o.port),
    '--bind',
    '127.0.0.1',
    '--protected-mode',
    'yes',
    '--dir',
    path.resolve(o.dataDir),
    '--daemonize',
    'no',
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--save',
    '',
    '--loglevel',
    'notice',
    // Written even when not daemonized: the next start finds and stops a server left running.
    '--pidfile',
    path.join(path.resolve(o.dataDir), 'redis.pid'),
  ]
  if (o.role === 'store') return [...common, '--maxmemory-policy', 'noeviction']
  return [
    ...common,
    '--maxmemory',
    String(o.maxMemory ?? 256 * 1024 * 1024),
    '--maxmemory-policy',
    'allkeys-lru',
  ]
}

/** Finds redis-server on PATH; under root installs it with apt-get when missing. Returns its path. */
export function ensureRedisServer(onLog: (line: string) => void = () => {}): string {
  return ensureProgram(
    { command: 'redis-server', pkg: 'redis-server', otherwise: 'set REDIS_URL and CACHE_REDIS_URL' },
    onLog,
  )
}

/** One redis-server child process. */
export class LocalRedis {
  readonly #options: LocalRedisOptions
  #child: ChildProcess | undefined
  #exited: Promise<void> | undefined

  constructor(options: LocalRedisOptions) {
    this.#options = options
  }

  get url(): string {
    return `redis://127.0.0.1:${this.#options.port}`
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  /** Resolves when the server started last exits (for whoever keeps it running). */
  get exited(): Promise<void> | undefined {
    return this.#exited
  }

  /** Starts the server and resolves once it answers PING with its data loaded. */
  async start(): Promise<void> {
    const o = this.#options
    const bin = ensureRedisServer(o.onLog)
    await fs.mkdir(o.dataDir, { recursive: true })
    await this.stopLeftover()
    // Its own process group: a Ctrl-C in the terminal must not reach it before `fleet up` stopped the
    // processes that use it.
    const child = spawn(bin, redisArgs(o), { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    this.#child = child
    const tail: string[] = []
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue
        tail.push(line)
        if (tail.length > 20) tail.shift()
        o.onLog?.(line)
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    let exited = false
    this.#exited = new Promise((resolve) =>
      child.once('exit', () => {
        exited = true
        resolve()
      }),
    )
    const deadline = Date.now() + 30_000
    for (;;) {
      if (exited) throw new ServiceStartError(`redis-server (${o.role})`, tail.join('\n') || 'it exited')
      const client = new Redis(this.url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      })
      client.on('error', () => {})
      try {
        await client.connect()
        const info = await client.info('persistence')
        if (/loading:0/.test(info)) {
          client.disconnect()
          return
        }
      } catch {
        // not up yet
      }
      client.disconnect()
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new ServiceStartError(`redis-server (${o.role})`, `not ready after 30 s: ${tail.join('\n')}`)
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  /** SIGTERM: redis-server flushes its AOF and exits. */
  async stop(timeoutMs = 30_000): Promise<void> {
    const child = this.#child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    await this.#exited
    clearTimeout(timer)
  }

  /**
   * A redis-server of this data folder left running by a `fleet up` that was killed holds the port and the
   * AOF: stop it cleanly (SIGTERM flushes the AOF) before starting a new one.
   */
  async stopLeftover(): Promise<void> {
    const dir = path.resolve(this.#options.dataDir)
    let pid: number
    try {
      pid = Number((await fs.readFile(path.join(dir, 'redis.pid'), 'utf8')).trim())
    } catch {
      return
    }
    if (!Number.isInteger(pid) || pid <= 0) return
    // The pid may have been reused: only a live redis-server counts.
    const alive = async (): Promise<boolean> => {
      try {
        return (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('redis-server')
      } catch {
        return false
      }
    }
    if (!(await alive())) return
    this.#options.onLog?.(`stopping the redis-server (pid ${pid}) left running on ${dir}`)
    process.kill(pid, 'SIGTERM')
    const deadline = Date.now() + 30_000
    while ((await alive()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    if (await alive()) process.kill(pid, 'SIGKILL')
  }

  /** Kills the server at once (fault injection in tests). */
  kill(): void {
    this.#child?.kill('SIGKILL')
  }
}
