/**
 * What a fault is: a named injection that resolves once the stack is whole again (or the bound passed), with
 * notes for the report; and the SIGSTOP hold several faults share.
 */
import type pg from 'pg'
import { processTree } from '../../test/support/processes.js'
import type { Client } from '../client.js'
import { HOLD_MS } from '../options.js'
import type { Stack } from '../stack.js'
import { sleep } from '../wait.js'

export interface FaultResult {
  /** When the stack was whole again (epoch ms). */
  wholeAt?: number
  notes: string[]
}

/** Figures a fault measures for the run's targets, beyond its own phase. */
export interface Measures {
  /** Per SIGKILLed worker: ms from its death to its job running again (Infinity: not within 30 s). */
  deathToRerun: number[]
  /** Processes left after `fleet up` was SIGKILLed (-1: not measured). */
  leftAfterKill: number
}

/** What a fault acts on and reads from. */
export interface FaultContext {
  stack: Stack
  client: Client
  /** The stack's PostgreSQL, outside Fleet: the chaos job's run and effect rows. */
  db: pg.Pool
  measures: Measures
}

export interface Fault {
  name: string
  what: string
  inject: (ctx: FaultContext) => Promise<FaultResult>
}

/** SIGSTOPs the processes `pids` gives for CHAOS_HOLD, then SIGCONTs them (and anything forked meanwhile). */
export async function stopFor(pids: () => Promise<number[]>, notes: string[]): Promise<void> {
  const list = await pids()
  for (const p of list) process.kill(p, 'SIGSTOP')
  await sleep(HOLD_MS)
  // The tree again: a process forked meanwhile (none expected: the parent is stopped) resumes too.
  for (const p of new Set([...list, ...list.flatMap((x) => processTree(x))])) {
    try {
      process.kill(p, 'SIGCONT')
    } catch {
      // gone
    }
  }
  notes.push(`stopped ${HOLD_MS / 1000} s`)
}
