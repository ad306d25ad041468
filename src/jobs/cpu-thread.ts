/**
 * The worker-thread side of the CPU pool: imports the module a CPU-heavy job type names (once per thread)
 * and runs its export on the task's input, reporting progress through the task's MessagePort.
 */
import type { MessagePort } from 'node:worker_threads'
import { useThisFleet } from '../loader/this-fleet.js'
import { resolveSource } from './source.js'

export interface CpuTask {
  module: string
  export: string
  input: unknown
  port?: MessagePort
}

type CpuExport = (input: unknown, report: (progress: unknown) => void) => unknown

const loaded = new Map<string, Promise<Record<string, unknown>>>()
let tsHooks: Promise<unknown> | undefined

/**
 * Sources run directly (development, tests): a thread does not inherit tsx's ESM hooks on Node 20, so they
 * are registered here before a `.ts` module is imported. Built code (`dist/`) never takes this path.
 */
async function importSource(href: string): Promise<Record<string, unknown>> {
  useThisFleet()
  if (href.endsWith('.ts')) {
    tsHooks ??= import('tsx/esm/api').then((api) => api.register())
    await tsHooks
  }
  return (await import(href)) as Record<string, unknown>
}

export default async function run(task: CpuTask): Promise<unknown> {
  const href = resolveSource(new URL(task.module)).href
  let mod = loaded.get(href)
  if (!mod) {
    mod = importSource(href)
    loaded.set(href, mod)
  }
  const fn = (await mod)[task.export]
  if (typeof fn !== 'function') throw new Error(`${task.module} has no function export ${task.export}`)
  try {
    return await (fn as CpuExport)(task.input, (progress) => task.port?.postMessage(progress))
  } finally {
    task.port?.close()
  }
}
