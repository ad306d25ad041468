/**
 * Upstream membership. Either fixed (the URLs given), or read from the registry in the store Redis every
 * interval: web entries in state `starting` or `ready` are upstreams (a `ready` one takes requests at once,
 * a `starting` one after its first passed health check); a `draining` entry, or one that vanished, gets
 * no new requests while its in-flight requests finish. While Redis is away the last known set is kept, and
 * for a short grace after it comes back nothing is removed, so instances can renew entries that expired.
 */
import type { Logger } from '../log.js'
import type { InstanceState, Registry } from '../registry/registry.js'
import type { HealthChecker } from './health.js'

/** What discovery asks of health checking: a first check of a new upstream (a no-op where the engine checks). */
export type HealthProbe = Pick<HealthChecker, 'check'>

import type { UpstreamSet } from './upstream-set.js'

export interface DiscoveryStatus {
  source: 'static' | 'registry'
  /** Epoch ms of the last successful registry read. */
  lastOkAt?: number
  /** Set while the registry cannot be read. */
  lastError?: string
}

export interface Discovery {
  start(): Promise<void>
  stop(): void
  status(): DiscoveryStatus
}

/** A fixed list of upstreams, trusted healthy until checks say otherwise. */
export class StaticDiscovery implements Discovery {
  readonly #urls: string[]
  readonly #set: UpstreamSet
  readonly #health: HealthProbe

  constructor(urls: string[], set: UpstreamSet, health: HealthProbe) {
    this.#urls = urls
    this.#set = set
    this.#health = health
  }

  async start(): Promise<void> {
    for (const url of this.#urls) void this.#health.check(this.#set.add(url, true))
  }

  stop(): void {}

  status(): DiscoveryStatus {
    return { source: 'static' }
  }
}

const RANK: Record<InstanceState, number> = { draining: 0, starting: 1, ready: 2 }

export class RegistryDiscovery implements Discovery {
  readonly #registry: Registry
  readonly #set: UpstreamSet
  readonly #health: HealthProbe
  readonly #intervalMs: number
  readonly #graceMs: number
  readonly #logger: Logger
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  #lastOkAt: number | undefined
  #lastError: string | undefined
  #recoveredAt = 0

  constructor(
    registry: Registry,
    set: UpstreamSet,
    health: HealthProbe,
    options: { intervalMs: number; graceMs: number },
    logger: Logger,
  ) {
    this.#registry = registry
    this.#set = set
    this.#health = health
    this.#intervalMs = options.intervalMs
    this.#graceMs = options.graceMs
    this.#logger = logger
  }

  /** Reads the registry once (a failure is logged, not thrown), then keeps polling. */
  async start(): Promise<void> {
    await this.poll()
    this.#schedule()
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }

  status(): DiscoveryStatus {
    return { source: 'registry', lastOkAt: this.#lastOkAt, lastError: this.#lastError }
  }

  #schedule(): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      void this.poll().finally(() => this.#schedule())
    }, this.#intervalMs)
    this.#timer.unref()
  }

  /** One read of the registry applied to the upstream set. */
  async poll(): Promise<void> {
    let entries: Awaited<ReturnType<Registry['list']>>
    try {
      entries = await withTimeout(this.#registry.list('web'), Math.max(1000, this.#intervalMs * 2))
    } catch (err) {
      if (this.#lastError === undefined) {
        this.#logger.warn(
          { err: (err as Error).message, upstreams: this.#set.all().length },
          'registry unreachable; keeping the last known upstreams',
        )
      }
      this.#lastError = (err as Error).message
      return
    }
    const now = Date.now()
    if (this.#lastError !== undefined) {
      this.#logger.info('registry reachable again')
      this.#lastError = undefined
      this.#recoveredAt = now
    }
    this.#lastOkAt = now
    if (this.#stopped) return
    const wanted = new Map<string, { url: string; state: InstanceState }>()
    for (const e of entries) {
      if (!e.url || !(e.state in RANK)) continue
      let origin: string
      try {
        origin = new URL(e.url).origin
      } catch {
        continue
      }
      const prev = wanted.get(origin)
      if (!prev || RANK[e.state] > RANK[prev.state]) wanted.set(origin, { url: e.url, state: e.state })
    }
    for (const [origin, { url, state }] of wanted) {
      const existing = this.#set.get(origin)
      if (state === 'draining') {
        if (existing) this.#set.setDraining(origin, true)
        continue
      }
      if (existing) this.#set.setDraining(origin, false)
      else void this.#health.check(this.#set.add(url, state === 'ready'))
    }
    if (now - this.#recoveredAt < this.#graceMs) return
    for (const u of this.#set.all()) if (!wanted.has(u.origin)) this.#set.remove(u.origin)
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}
