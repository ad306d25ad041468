/**
 * Worker threads for CPU-heavy job code (piscina). The main thread of a worker process keeps renewing job
 * locks, answering health checks and talking to Redis while the threads compute. Aborting a task ends its
 * thread (piscina replaces it), so a cancelled or timed-out computation stops at once.
 */
import os from 'node:os'
import { MessageChannel } from 'node:worker_threads'
import { Piscina } from 'piscina'
import type { CpuTask } from './cpu-thread.js'
import type { CpuFunction } from './define.js'
import { resolveSource } from './source.js'

export class CpuPool {
  readonly #pool: Piscina<CpuTask, unknown>

  /** `threads` 0 means one less than the cores, at least 1. */
  constructor(threads: number) {
    const max = threads > 0 ? threads : Math.max(1, os.availableParallelism() - 1)
    this.#pool = new Piscina<CpuTask, unknown>({
      filename: resolveSource(new URL('./cpu-thread.js', import.meta.url)).href,
      minThreads: 0,
      maxThreads: max,
      idleTimeout: 30_000,
    })
  }

  get threads(): number {
    return this.#pool.maxThreads
  }

  /** Runs `fn` on `input` in a thread; `onProgress` gets what the function reports. */
  async run<O>(
    fn: CpuFunction,
    input: unknown,
    options: {
      signal?: AbortSignal
      transferList?: readonly ArrayBuffer[]
      onProgress?: (p: unknown) => void
    },
  ): Promise<O> {
    const { port1, port2 } = new MessageChannel()
    port1.on('message', (p: unknown) => options.onProgress?.(p))
    try {
      const task: CpuTask = { module: fn.module.href, export: fn.export, input, port: port2 }
      return (await this.#pool.run(task, {
        signal: options.signal ?? null,
        transferList: [port2, ...(options.transferList ?? [])],
      })) as O
    } finally {
      port1.close()
    }
  }

  async close(): Promise<void> {
    await this.#pool.destroy()
  }
}
