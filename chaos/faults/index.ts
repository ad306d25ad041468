/** The faults of a run, in order (CHAOS_ONLY keeps those whose name contains one of its words). */
import { ONLY } from '../options.js'
import type { Fault } from './fault.js'
import { killFault, stopFault } from './process.js'
import { rollingRestart } from './restart.js'
import { killUp } from './supervisor.js'
import { workerFault } from './worker.js'

export type { Fault, FaultContext, FaultResult, Measures } from './fault.js'

export const FAULTS: Fault[] = [
  killFault('web-1'),
  stopFault('web-1'),
  workerFault('SIGKILL'),
  workerFault('SIGSTOP'),
  killFault('redis-store'),
  stopFault('redis-store'),
  killFault('redis-cache'),
  stopFault('redis-cache'),
  killFault('postgres'),
  stopFault('postgres'),
  rollingRestart,
  killUp,
].filter((f) => ONLY.length === 0 || ONLY.some((o) => f.name.includes(o)))

/** The phase before the first fault: steady load only. */
export const baseline: Fault = {
  name: 'none (baseline)',
  what: 'steady load',
  inject: async () => ({ wholeAt: Date.now(), notes: [] }),
}
