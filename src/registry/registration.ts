/**
 * Keeps one instance announced: a heartbeat renews the entry every `heartbeatMs`; `setState` publishes a
 * new state at once (draining, for example); `stop` removes the entry. A failed heartbeat (Redis away) is
 * retried on the next tick; the entry simply expires if the process is gone.
 */
import os from 'node:os'
import type { Config } from '../config/index.js'
import type { Logger } from '../log.js'
import type { Redis } from '../redis/connect.js'
import { type InstanceInfo, type InstanceRole, type InstanceState, Registry } from './registry.js'

export class Registration {
  readonly #registry: Registry
  readonly #info: InstanceInfo
  readonly #ttlMs: number
  readonly #heartbeatMs: number
  readonly #logger?: Logger
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor(
    registry: Registry,
    info: InstanceInfo,
    options: { ttlMs: number; heartbeatMs: number; logger?: Logger },
  ) {
    this.#registry = registry
    this.#info = { ...info }
    this.#ttlMs = options.ttlMs
    this.#heartbeatMs = options.heartbeatMs
    this.#logger = options.logger
  }

  get info(): Readonly<InstanceInfo> {
    return this.#info
  }

  /** Announces now and then on every heartbeat. Resolves after the first announcement (or its failure). */
  async start(): Promise<void> {
    await this.#beat()
    this.#schedule()
  }

  /** Publishes a new state right away (and in every later heartbeat). */
  async setState(state: InstanceState): Promise<void> {
    this.#info.state = state
    await this.#beat()
  }

  /** Stops the heartbeat and removes the entry. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#registry.remove(this.#info.role, this.#info.id).catch((err: Error) => {
      this.#logger?.warn({ err }, 'could not deregister; the entry will expire by itself')
    })
  }

  #schedule(): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      void this.#beat().finally(() => this.#schedule())
    }, this.#heartbeatMs)
    this.#timer.unref()
  }

  async #beat(): Promise<void> {
    if (this.#stopped) return
    try {
      await this.#registry.announce(this.#info, this.#ttlMs)
    } catch (err) {
      this.#logger?.warn({ err }, 'registry heartbeat failed; retrying on the next beat')
    }
  }
}

/**
 * The registration of this process under `role`, renewed with the registry settings of `config`.
 * @example const reg = registerProcess(deps, 'web', url, 'ready'); await reg.start()
 */
export function registerProcess(
  deps: {
    redis: Redis
    config: Pick<Config, 'redisPrefix' | 'registryTtl' | 'registryHeartbeat'>
    instanceId: string
    logger?: Logger
  },
  role: InstanceRole,
  url: string,
  state: InstanceState,
  more: Pick<InstanceInfo, 'adminUrl' | 'queues'> = {},
): Registration {
  return new Registration(
    new Registry(deps.redis, deps.config.redisPrefix),
    {
      id: deps.instanceId,
      role,
      url,
      ...more,
      host: os.hostname(),
      pid: process.pid,
      state,
      startedAt: Date.now(),
    },
    { ttlMs: deps.config.registryTtl, heartbeatMs: deps.config.registryHeartbeat, logger: deps.logger },
  )
}
