import { readdirSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import { waitFor } from './wait.js'

/** True while process `pid` exists (signal 0 probes without touching it). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** `pid` and every live process below it (read from /proc), parents first. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
    } catch {
      continue // exited meanwhile
    }
    // Field 4 (ppid) follows the command name in parentheses, which may itself hold spaces or ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    const list = children.get(ppid) ?? []
    list.push(Number(entry))
    children.set(ppid, list)
  }
  const tree = [pid]
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i] as number) ?? []))
  return tree
}

/** Sends `signal` to `pid` and all its descendants (SIGSTOP of a whole PostgreSQL: postmaster and backends). */
export function signalTree(pid: number, signal: NodeJS.Signals): void {
  for (const p of processTree(pid)) {
    try {
      process.kill(p, signal)
    } catch {
      // gone already
    }
  }
}

/** True once `pid` has exited (gone, or a zombie not yet reaped). */
export function exited(pid: number): boolean {
  if (!alive(pid)) return true
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}

/**
 * A stack test's last cleanup: SIGKILLs each of `pids` whose command line holds one of `marks` (only this
 * test's processes: a pid seen earlier may belong to another program by now), waits up to 10 s for them to
 * exit (a zombie counts as gone: it writes nothing), then removes the data folder `dir`.
 */
export async function killMarkedAndRemove(
  pids: Iterable<number>,
  marks: string[],
  dir: string,
): Promise<void> {
  const killed: number[] = []
  for (const pid of pids) {
    const cmd = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (marks.some((m) => cmd.includes(m))) {
      process.kill(pid, 'SIGKILL')
      killed.push(pid)
    }
  }
  await waitFor(
    'the killed processes to exit',
    async () => (killed.every(exited) ? true : undefined),
    10_000,
    20,
  ).catch(() => {})
  await fs.rm(dir, { recursive: true, force: true })
}
