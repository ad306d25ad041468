/**
 * The stores of the local stack: PostgreSQL and the two Redis servers, each either given by URL or started
 * here (embedded, data under the data folder). Also the port checks that make `fleet up` fail fast, naming
 * the setting to change, when a port it needs is taken.
 */
import { existsSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import type { Config } from '../config/index.js'
import { PortInUseError } from './errors.js'
import { freePort } from './ports.js'
import { EmbeddedPostgres } from './postgres.js'
import { LocalRedis } from './redis.js'
import { StoreKeeper } from './store-keeper.js'

/** A port `fleet up` needs, with the setting that chooses it. */
export interface PortNeed {
  port: number
  host: string
  setting: string
  what: string
}

/** Throws PortInUseError when something already listens on host:port (or it may not be bound here). */
export async function assertPortFree(need: PortNeed): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer()
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new PortInUseError(need.port, need.setting, need.what, { cause: err })),
    )
    server.listen({ port: need.port, host: need.host, exclusive: true }, () => server.close(() => resolve()))
  })
}

/** `port`, or a free one when it is 0. */
export async function portOrFree(port: number): Promise<number> {
  return port === 0 ? freePort() : port
}

/**
 * Stops a PostgreSQL or redis-server that a killed `fleet up` left running on this data folder: they hold
 * the ports, which are checked before anything starts.
 */
export async function stopLeftoverStores(
  config: Config,
  dataDir: string,
  onLog: (name: string, line: string) => void,
): Promise<void> {
  if (!config.databaseUrl) {
    await new EmbeddedPostgres({
      dataDir: path.join(dataDir, 'postgres'),
      port: config.pgPort,
      database: 'fleet',
      onLog: (line) => onLog('postgres', line),
    }).stopLeftover()
  }
  for (const role of ['store', 'cache'] as const) {
    if ((role === 'store' ? config.redisUrl : config.cacheRedisUrl) !== undefined) continue
    await new LocalRedis({
      role,
      dataDir: path.join(dataDir, `redis-${role}`),
      port: 0,
      onLog: (line) => onLog(`redis-${role}`, line),
    }).stopLeftover()
  }
}

/** One store process the stack started and keeps running (shown in the status table). */
export type Service = StoreKeeper

export interface Stores {
  databaseUrl: string
  redisUrl: string
  cacheRedisUrl: string
  /** The processes started here, in start order. */
  services: Service[]
}

export interface StartStoresOptions {
  dataDir: string
  /** A progress line for the user. */
  say: (line: string) => void
  /** Each line a service writes, by service name (for its log file). */
  onLog: (name: string, line: string) => void
  /** Called with each service as soon as it started, so a shutdown can stop it even if a later one fails. */
  onStarted: (service: Service) => void
  /** True once a stop was asked for: no further service starts. */
  stopping: () => boolean
}

/** Thrown between two service starts when a stop was asked for meanwhile. */
class StartAbandoned extends Error {}

/**
 * Starts what the config does not point at: an embedded PostgreSQL (database `fleet`) and the store and cache
 * redis-servers. Ports must have been checked (and 0 replaced by a free port) before.
 */
export async function startStores(config: Config, o: StartStoresOptions): Promise<Stores> {
  const services: Service[] = []
  const started = (s: Service) => {
    services.push(s)
    o.onStarted(s)
    if (o.stopping()) throw new StartAbandoned('the stack is stopping')
  }
  const startPostgres = async (): Promise<string> => {
    const dir = path.join(o.dataDir, 'postgres')
    const fresh = !existsSync(path.join(dir, 'PG_VERSION'))
    o.say(
      fresh
        ? `starting PostgreSQL on 127.0.0.1:${config.pgPort}: initialising a new cluster in ${dir} (first run only)...`
        : `starting PostgreSQL on 127.0.0.1:${config.pgPort} (data in ${dir})...`,
    )
    const pg = new EmbeddedPostgres({
      dataDir: dir,
      port: config.pgPort,
      database: 'fleet',
      onLog: (line) => o.onLog('postgres', line),
    })
    const startedAt = Date.now()
    await pg.start()
    const keeper = new StoreKeeper(pg, {
      role: 'postgres',
      name: 'postgres',
      port: config.pgPort,
      startedAt,
      say: o.say,
    })
    started(keeper)
    keeper.watch()
    return pg.url
  }
  // The three start side by side; all have settled (started or failed) before this returns or throws, so
  // a shutdown after a failure finds every one that started.
  const results = await Promise.allSettled([
    config.databaseUrl ?? startPostgres(),
    config.redisUrl ?? startRedis(config, o, 'store', config.redisPort, started),
    config.cacheRedisUrl ?? startRedis(config, o, 'cache', config.cacheRedisPort, started),
  ])
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  const [databaseUrl, redisUrl, cacheRedisUrl] = results.map(
    (r) => (r as PromiseFulfilledResult<string>).value,
  )
  return { databaseUrl, redisUrl, cacheRedisUrl, services }
}

async function startRedis(
  config: Config,
  o: StartStoresOptions,
  role: 'store' | 'cache',
  port: number,
  started: (s: Service) => void,
): Promise<string> {
  const name = `redis-${role}`
  const dir = path.join(o.dataDir, name)
  o.say(`starting Redis (${role}) on 127.0.0.1:${port} (data in ${dir})...`)
  const redis = new LocalRedis({
    role,
    dataDir: dir,
    port,
    maxMemory: role === 'cache' ? config.cacheMaxMemory : undefined,
    onLog: (line) => o.onLog(name, line),
  })
  const startedAt = Date.now()
  await redis.start()
  const keeper = new StoreKeeper(redis, { role: 'redis', name, port, startedAt, say: o.say })
  started(keeper)
  keeper.watch()
  return redis.url
}
