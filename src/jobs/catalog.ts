/**
 * The job types a process knows: Fleet's built-in ones, the application's, and those exported as
 * `jobTypes` by the modules named in FLEET_JOB_MODULES (how a deployment adds its own without forking).
 */
import { Type } from '@sinclair/typebox'
import { ConfigError } from '../config/errors.js'
import { type AnyJobType, defineJob } from './define.js'
import { DuplicateJobTypeError, JobModuleError } from './errors.js'
import { moduleUrl, resolveSource } from './source.js'

/** A job that does nothing: the yardstick of the queueing layer's own cost (bench/jobs.ts). */
export const noopJob = defineJob({
  name: 'fleet.noop',
  payload: Type.Object({}, { additionalProperties: true }),
  durable: false,
  attempts: 1,
  process: async () => null,
})

export const builtinJobTypes: readonly AnyJobType[] = [noopJob]

function isJobType(v: unknown): v is AnyJobType {
  const t = v as AnyJobType | undefined
  return typeof t?.name === 'string' && typeof t.process === 'function' && typeof t.payload === 'object'
}

/** Imports each module of a comma-separated list and collects its exported `jobTypes`. */
export async function loadJobModules(list: string | undefined): Promise<AnyJobType[]> {
  const out: AnyJobType[] = []
  for (const spec of (list ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const url = moduleUrl(spec)
    let mod: { jobTypes?: unknown }
    try {
      mod = (await import(resolveSource(url).href)) as { jobTypes?: unknown }
    } catch (err) {
      throw new JobModuleError(spec, `cannot be imported: ${(err as Error).message}`, { cause: err })
    }
    if (!Array.isArray(mod.jobTypes) || !mod.jobTypes.every(isJobType)) {
      throw new JobModuleError(spec, 'must export `jobTypes`, an array of defineJob() results')
    }
    out.push(...mod.jobTypes)
  }
  return out
}

/** Joins lists of types, refusing two with one name; keeps only `only` (names) when given. */
export function selectJobTypes(lists: readonly (readonly AnyJobType[])[], only?: string): AnyJobType[] {
  const byName = new Map<string, AnyJobType>()
  for (const t of lists.flat()) {
    if (byName.has(t.name)) throw new DuplicateJobTypeError(t.name)
    byName.set(t.name, t)
  }
  if (!only) return [...byName.values()]
  const names = only
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const missing = names.filter((n) => !byName.has(n))
  if (missing.length > 0) {
    throw new ConfigError(
      'FLEET_JOB_QUEUES',
      only,
      `it names unknown job types: ${missing.join(', ')} (known: ${[...byName.keys()].join(', ')})`,
      'the environment',
    )
  }
  return names.map((n) => byName.get(n)!)
}
