/**
 * What `fleet up` does when one of its workers exits on its own (a crash, SIGKILL, the OOM killer): it
 * knows at once, so it hands the worker's active jobs on through BullMQ's stalled mechanism (see
 * jobs/handoff.ts) instead of leaving them locked for FLEET_JOB_LOCK and the next stalled check. It runs
 * before the supervisor starts the worker again (its back-off and boot take longer than the hand-off), so
 * the jobs it moves cannot be the new process's.
 */
import type { FleetApp } from '../app/define.js'
import { appJobTypes } from '../app/manifest.js'
import type { Config } from '../config/index.js'
import { handOffJobs } from '../jobs/handoff.js'
import { connectRedis, type Redis } from '../redis/connect.js'

export class WorkerDeaths {
  readonly #redisUrl: string
  readonly #config: Config
  readonly #app: FleetApp
  readonly #say: (line: string) => void
  #redis: Redis | undefined
  #types: Promise<string[]> | undefined

  constructor(options: { redisUrl: string; config: Config; app: FleetApp; say: (line: string) => void }) {
    this.#redisUrl = options.redisUrl
    this.#config = options.config
    this.#app = options.app
    this.#say = options.say
  }

  /** Worker `name` (its FLEET_INSTANCE_ID) has exited: hands its active jobs on; never throws. */
  async died(name: string): Promise<void> {
    const t0 = Date.now()
    try {
      this.#redis ??= connectRedis(this.#redisUrl, {
        name: 'fleet-up',
        extra: { commandTimeout: 2_000, maxRetriesPerRequest: 1 },
        onError: () => {}, // a failed command says it below
      })
      this.#types ??= appJobTypes(this.#app, { ...this.#config, jobQueues: undefined }).then((types) =>
        types.map((t) => t.name),
      )
      const { handedOn } = await handOffJobs(this.#redis, this.#config, name, await this.#types)
      const ids = Object.values(handedOn).flat()
      if (ids.length > 0)
        this.#say(
          `${name} died with ${ids.length} active job${ids.length === 1 ? '' : 's'}: handed on in ${Date.now() - t0} ms (${ids.join(', ')})`,
        )
    } catch (err) {
      this.#say(
        `${name} died; handing its jobs on failed (${(err as Error).message}): they run again once their lock expires (FLEET_JOB_LOCK)`,
      )
    }
  }

  close(): void {
    this.#redis?.disconnect()
  }
}
