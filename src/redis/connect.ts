/**
 * Redis connections. The store Redis holds sessions, queues and the registry and must not lose writes;
 * the cache Redis may lose anything. Both connections retry forever with a capped backoff, so a process
 * survives a Redis restart; commands issued while Redis is away fail fast instead of queueing without bound.
 *
 * A `redis+sentinel://` URL (src/redis/url.ts) connects to the primary that the Sentinels name, and follows
 * a failover: each connection subscribes to `+switch-master` on the Sentinels (ioredis `failoverDetector`)
 * and reconnects to the new primary as soon as one is announced; a `READONLY` answer (a demoted primary)
 * or `LOADING` (a restarted one) also reconnects, and the command is sent again. Every Redis connection of
 * Fleet is made here, so BullMQ's (which duplicates these, options and all) follow too.
 *
 * TLS (`rediss://`, `rediss+sentinel://`): the server's certificate is verified, against the system CAs or the
 * PEM file FLEET_REDIS_TLS_CA names (RedisConnectOptions.tlsCaFile). Through Sentinel, ioredis takes the
 * Sentinels' TLS options (`sentinelTLS`, also for the failover detector's subscriber connections) apart from
 * the servers' (`tls` with `enableTLSForSentinelMode`); both get the same ones. A certificate must name the
 * address it is reached at: a Sentinel's the host in the URL, a server's the address the Sentinels announce.
 */
import fs from 'node:fs'
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls'
import { Redis, type RedisOptions } from 'ioredis'
import { parseSetting } from '../config/define.js'
import { coreSettings } from '../config/settings/core.js'
import { parseRedisUrl, type RedisTarget } from './url.js'

export type { Redis }

export interface RedisConnectOptions {
  /** Connection name shown by CLIENT LIST. */
  name?: string
  /** Fail commands at once while disconnected (true for the cache: a miss beats a wait). */
  failFast?: boolean
  /** Extra ioredis options (BullMQ needs maxRetriesPerRequest: null). */
  extra?: RedisOptions
  /** Called with each connection error (they are retried; this is for logging). */
  onError?: (err: Error) => void
  /**
   * A PEM file of CA certificates to trust, instead of the system's, on a TLS connection (`rediss://`,
   * `rediss+sentinel://`); null: the system's. Default: the file FLEET_REDIS_TLS_CA names in the environment.
   */
  tlsCaFile?: string | null
}

/** CA files read so far, by path: each is read once per process (a new CA needs a restart). */
const caFiles = new Map<string, Buffer>()

/**
 * The TLS options of every TLS connection: the CA of `file` when one is given, else the system's. The file is
 * checked as the setting is (a ConfigError, FLEET_E_CONFIG_INVALID, when it cannot be used).
 */
export function redisTlsOptions(file: string | null | undefined, source = 'environment'): ConnectionOptions {
  if (!file) return {}
  let ca = caFiles.get(file)
  if (!ca) {
    parseSetting(coreSettings.redisTlsCa, file, source)
    ca = fs.readFileSync(file)
    caFiles.set(file, ca)
  }
  return { ca }
}

/**
 * The CA file of a connection: the one given, else FLEET_REDIS_TLS_CA. Every Fleet process has its settings in
 * its environment (`fleet up` hands its config to its children there), so this is the setting loadConfig read
 * at start; it has no flag for that reason.
 */
function caFileOf(options: RedisConnectOptions): string | null | undefined {
  if (options.tlsCaFile !== undefined) return options.tlsCaFile
  return process.env[coreSettings.redisTlsCa.env] || undefined
}

/** Answers after which a connection reconnects and sends the command again (it was not executed). */
const RECONNECT_ON = /^(READONLY|LOADING)\b/

/**
 * `READONLY`: the server was a primary and is a replica now (a failover, or a replica behind a moved DNS
 * name); `LOADING`: it restarted and is reading its data. Either way the write was refused, so reconnecting
 * (through the Sentinels, to the current primary) and sending it again is safe.
 */
export function reconnectOnError(err: Error): 2 | false {
  return RECONNECT_ON.test(err.message) ? 2 : false
}

const backoff = (cap: number) => (times: number) => Math.min(50 * 2 ** Math.min(times, 6), cap)

/** ioredis options of a Sentinel target: who to ask, and how quickly to notice a new primary. */
function sentinelOptions(
  target: Extract<RedisTarget, { kind: 'sentinel' }>,
  tls: ConnectionOptions | undefined,
): RedisOptions {
  return {
    // TLS to the Sentinels (the lookups and the failover detector's subscriptions: ioredis's `sentinelTLS`) and
    // to the servers they name (`tls`, which ioredis uses in Sentinel mode only with enableTLSForSentinelMode).
    ...(tls ? { sentinelTLS: tls, tls, enableTLSForSentinelMode: true } : {}),
    sentinels: target.sentinels,
    name: target.masterName,
    username: target.username,
    password: target.password,
    db: target.db,
    sentinelUsername: target.sentinelUsername,
    sentinelPassword: target.sentinelPassword,
    // +switch-master from any Sentinel closes the connection at once, also one to a primary that hangs
    // or is cut off (its socket would never close by itself); it reconnects to the new primary.
    failoverDetector: true,
    // ...and drops that socket after 0.2 s instead of waiting 2 s for a hung server to close it gracefully.
    disconnectTimeout: 200,
    // A Sentinel that was down is subscribed to again within 2 s (ioredis waits a minute by default).
    sentinelReconnectStrategy: () => 2_000,
    // A Sentinel that accepts the connection but does not answer (hung, or its host cut off after the
    // connect) is given up after 1 s and the next one asked; without a bound the lookup would wait forever.
    sentinelCommandTimeout: 1_000,
    // While the old primary is down and none is promoted yet, ask again every 0.5 s at most, so that the
    // new one is reached within about that of its promotion; a connect to a dead host gives up after 2 s.
    retryStrategy: backoff(500),
    connectTimeout: 2_000,
  }
}

/** Closes (socket ends) of each connection so far: two equal readings mean one unbroken connection. */
const closes = new WeakMap<Redis, { n: number }>()

/**
 * How many times `redis` has lost its connection: a command and a later one ran on the same server, over
 * one connection, when this is the same before the first was sent and after the second answered.
 */
export function connectionEpoch(redis: Redis): number {
  return closes.get(redis)?.n ?? 0
}

/** Opens a connection to `url`; it reconnects by itself with a backoff capped at 2 s (0.5 s via Sentinel). */
export function connectRedis(url: string, options: RedisConnectOptions = {}): Redis {
  const target = parseRedisUrl(url)
  const common: RedisOptions = {
    connectionName: options.name,
    lazyConnect: false,
    enableOfflineQueue: !options.failFast,
    maxRetriesPerRequest: options.failFast ? 0 : 3,
    connectTimeout: 5_000,
    retryStrategy: backoff(2_000),
    reconnectOnError,
  }
  const tls = target.tls
    ? redisTlsOptions(caFileOf(options), options.tlsCaFile === undefined ? 'environment' : 'tlsCaFile')
    : undefined
  let redis: Redis
  if (target.kind === 'server') {
    // (ioredis turns TLS on for a URL that starts with `rediss://` in lower case only; given here, it is on for
    // any case of the scheme Fleet accepts.)
    redis = new Redis(url, { ...common, ...(tls ? { tls } : {}), ...options.extra })
  } else {
    const merged: RedisOptions = { ...common, ...sentinelOptions(target, tls), ...options.extra }
    // All Sentinels unreachable: retry on the connection's own schedule (a one-shot CLI's gives up).
    const retry = merged.retryStrategy
    merged.sentinelRetryStrategy = (times) => retry?.(times) ?? null
    redis = new Redis(merged)
  }
  equip(redis, options.onError)
  return redis
}

/**
 * What every connection made here has, and every duplicate of it (BullMQ duplicates a worker's connection
 * for its blocking reads): an error listener (errors are retried, and surface as failed commands; without
 * a listener ioredis prints each to stderr), a close count (connectionEpoch), and quiet Sentinel clients.
 */
function equip(redis: Redis, onError?: (err: Error) => void): void {
  trackCloses(redis)
  redis.on('error', (err) => onError?.(err))
  if (redis.options.sentinels) redis.on('connect', () => tuneFailoverDetector(redis))
  if (redis.options.sentinels && redis.options.sentinelTLS) explainSentinelTls(redis, onError)
  const duplicate = redis.duplicate.bind(redis)
  redis.duplicate = (override) => {
    const copy = duplicate(override)
    equip(copy, onError)
    return copy
  }
}

/** Connection failures that say nothing about TLS (the Sentinel is down or unreachable). */
const NOT_TLS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])
const lastExplained = new WeakMap<Redis, number>()

/**
 * ioredis reports a Sentinel it could not reach over TLS as "Connection is closed", dropping the reason (a
 * certificate from an untrusted CA, or for another name). So after "All sentinels are unreachable" a TLS
 * handshake alone (no Redis command) with each Sentinel, with the connection's TLS options, finds the reason,
 * reported through onError as `TLS to Sentinel host:port failed: <reason>`; at most once every 10 s.
 */
function explainSentinelTls(redis: Redis, onError?: (err: Error) => void): void {
  if (!onError) return
  redis.on('error', (err: Error) => {
    if (!err.message.startsWith('All sentinels are unreachable')) return
    const now = Date.now()
    if (now - (lastExplained.get(redis) ?? -Infinity) < 10_000) return
    lastExplained.set(redis, now)
    const options = redis.options.sentinelTLS as ConnectionOptions
    for (const { host = 'localhost', port = 26379 } of redis.options.sentinels ?? []) {
      // (Neither keeps a process alive: a one-shot command that gives up exits without waiting for them.)
      const socket = tlsConnect({ host, port, ...options }).unref()
      const timer = setTimeout(() => socket.destroy(), 2_000).unref() // no answer: nothing to say about TLS
      let said = false
      socket.once('secureConnect', () => socket.destroy())
      socket.on('error', (e: NodeJS.ErrnoException) => {
        if (said || NOT_TLS.has(e.code ?? '')) return
        said = true
        onError(new Error(`TLS to Sentinel ${host}:${port} failed: ${e.message}`))
      })
      socket.once('close', () => clearTimeout(timer))
    }
  })
}

interface WithFailoverDetector {
  connector?: { failoverDetector?: { sentinels?: { client?: Redis }[] } | null }
}

type MessageListener = (channel: string, message: string) => void
const tuned = new WeakSet<Redis>()

/**
 * Two fixes to ioredis's failover detector, whose Sentinel connections are made (and subscribed to
 * `+switch-master`) just before the connection emits `connect`:
 * - they have no error listener: a Sentinel that is down would print "[ioredis] Unhandled error event" every
 *   2 s for every connection. They get a silent one (they reconnect by themselves; the other Sentinels still
 *   report a failover);
 * - it reconnects on `+switch-master` of any master the Sentinels watch: the store's connections would
 *   reconnect (and resend what had no answer yet) on a failover of the cache. Only this connection's master
 *   name counts (the message is `<master name> <old ip> <old port> <new ip> <new port>`).
 * This reads ioredis internals: when their shape changes it does nothing, and both are back.
 */
function tuneFailoverDetector(redis: Redis): void {
  const detector = (redis as unknown as WithFailoverDetector).connector?.failoverDetector
  const name = redis.options.name
  for (const { client } of detector?.sentinels ?? []) {
    if (!client || tuned.has(client)) continue
    tuned.add(client)
    client.on('error', () => {})
    for (const listener of client.listeners('message') as MessageListener[]) {
      client.off('message', listener)
      client.on('message', (channel: string, message: string) => {
        if (channel !== '+switch-master' || String(message).split(' ')[0] === name) listener(channel, message)
      })
    }
  }
}

/** Counts the connection's closes (see connectionEpoch); for connections made here and their duplicates. */
export function trackCloses(redis: Redis): void {
  if (closes.has(redis)) return
  const count = { n: 0 }
  closes.set(redis, count)
  redis.on('close', () => {
    count.n++
  })
}
