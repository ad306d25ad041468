/**
 * Stale reads across faults (issue 20: "after a write is acknowledged, every read that starts later returns
 * it or something newer", across a cache-Redis failover too): the admin changes one product every 300 ms
 * (PATCH, its version increments), while two readers fetch its cached product page; a read that started
 * after version v was acknowledged and answers an older version is stale. Its requests are not samples of
 * the load.
 */
import type { Client } from '../chaos/client.js'
import { json } from '../chaos/client.js'
import { ADMIN } from '../chaos/options.js'
import { sleep } from '../chaos/wait.js'

export interface StaleRead {
  /** When the read started (epoch ms). */
  at: number
  got: number
  acked: number
}

export class Freshness {
  readonly stale: StaleRead[] = []
  reads = 0
  writes = 0
  #acked = 0
  #running = false
  #loops: Promise<void>[] = []

  constructor(
    readonly client: Client,
    readonly productId: number,
  ) {}

  /** Logs the admin in and starts the writer and the two readers. */
  async start(): Promise<void> {
    const cookie = await this.client.login(ADMIN.email, ADMIN.password)
    this.#running = true
    this.#loops = [this.#writer(cookie), this.#reader(), this.#reader()]
  }

  async stop(): Promise<void> {
    this.#running = false
    await Promise.all(this.#loops)
  }

  async #writer(cookie: string): Promise<void> {
    for (let stock = 1; this.#running; stock++) {
      const a = await this.client.call(
        undefined,
        'PATCH',
        `/api/products/${this.productId}`,
        json({ stock }, cookie),
      )
      const version = (a.body as { version?: number } | undefined)?.version
      if (a.status === 200 && typeof version === 'number') {
        this.#acked = Math.max(this.#acked, version)
        this.writes++
      }
      await sleep(300)
    }
  }

  async #reader(): Promise<void> {
    while (this.#running) {
      const at = Date.now()
      const acked = this.#acked
      const a = await this.client.call(undefined, 'GET', `/api/products/${this.productId}`)
      const got = (a.body as { version?: number } | undefined)?.version
      if (a.status === 200 && typeof got === 'number') {
        this.reads++
        if (got < acked) this.stale.push({ at, got, acked })
      }
      await sleep(20)
    }
  }
}
