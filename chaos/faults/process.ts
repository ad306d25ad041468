/**
 * Faults of one named process of the stack (a web server, a redis-server, PostgreSQL): SIGKILL, as the OOM
 * killer would, or SIGSTOP for CHAOS_HOLD, as a hung process is.
 */
import { processTree } from '../../test/support/processes.js'
import { HOLD_MS, RECOVER_MS } from '../options.js'
import { until } from '../wait.js'
import { type Fault, stopFor } from './fault.js'

/** SIGKILL of `name`; whole again once it runs under a new pid. */
export function killFault(name: string): Fault {
  return {
    name: `SIGKILL ${name}`,
    what: `kill -9 ${name}`,
    async inject({ stack }) {
      const pid = await stack.pidOf(name)
      process.kill(pid, 'SIGKILL') // PostgreSQL: the postmaster, as the OOM killer would; its backends follow
      const s = await until(() => stack.whole(name, pid), RECOVER_MS, 200)
      return { wholeAt: s ? Date.now() : undefined, notes: [] }
    },
  }
}

/** SIGSTOP of `name` (PostgreSQL: its whole process tree) for CHAOS_HOLD, then SIGCONT. */
export function stopFault(name: string): Fault {
  return {
    name: `SIGSTOP ${name}`,
    what: `kill -STOP ${name} for ${HOLD_MS / 1000} s, then -CONT`,
    async inject({ stack }) {
      const notes: string[] = []
      const pid = await stack.pidOf(name)
      await stopFor(async () => (name === 'postgres' ? processTree(pid) : [pid]), notes)
      const s = await until(() => stack.whole(), RECOVER_MS, 200)
      return { wholeAt: s ? Date.now() : undefined, notes }
    },
  }
}
