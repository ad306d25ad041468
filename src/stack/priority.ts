/**
 * CPU priority of a child process. On Linux niceness belongs to each thread: setpriority(pid) changes only
 * the main thread, and threads inherit the value of the thread that creates them. Node starts its own
 * threads (V8's platform workers) before the parent can act, so `lowerPriority` is applied twice: right
 * after spawning (threads made later inherit it) and once the child is ready, to every thread listed in
 * /proc/<pid>/task.
 */
import fs from 'node:fs'
import os from 'node:os'

/**
 * Sets the niceness of `pid` and of each of its threads; returns how many threads were changed (0 when
 * not permitted, e.g. in some containers: the child then runs at normal priority).
 * @example lowerPriority(child.pid, 19)
 */
export function lowerPriority(pid: number, nice: number): number {
  let tids: number[]
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`).map(Number)
  } catch {
    tids = [pid] // no /proc (not Linux) or the process is gone
  }
  let changed = 0
  for (const tid of tids) {
    try {
      os.setPriority(tid, nice)
      changed++
    } catch {
      // gone, or not permitted
    }
  }
  return changed
}
