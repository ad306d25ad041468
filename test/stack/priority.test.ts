import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { describe, expect, it } from 'vitest'
import { lowerPriority } from '../../src/stack/priority.js'

/** Niceness of every thread of `pid` (field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNice(pid: number): number[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
  })
}

describe.runIf(fs.existsSync('/proc/self/task'))('lowerPriority', () => {
  it('lowers every thread of a running Node process, including threads it made before the call', async () => {
    // A child with a worker thread and V8's own threads, all started before the priority is lowered.
    const child = spawn(process.execPath, [
      '-e',
      "new (require('node:worker_threads').Worker)('setInterval(() => {}, 1000)', { eval: true }); console.log('up'); setInterval(() => {}, 1000)",
    ])
    try {
      await new Promise((resolve) => child.stdout.once('data', resolve))
      const pid = child.pid as number
      expect(threadNice(pid).length).toBeGreaterThan(3)
      const before = Math.max(...threadNice(pid))
      const target = Math.min(19, before + 5)
      expect(target).not.toBe(before)
      const changed = lowerPriority(pid, target)
      expect(changed).toBe(threadNice(pid).length)
      expect(new Set(threadNice(pid))).toEqual(new Set([target]))
    } finally {
      child.kill('SIGKILL')
    }
  })
  it('returns 0 for a process that is gone', () => {
    expect(lowerPriority(2 ** 22 + 12345, 5)).toBe(0)
  })
})
