/**
 * Children left running by a `fleet up` that was killed outright (SIGKILL, a crash of the supervisor): their
 * pids are recorded in `<data dir>/children.json` while the stack runs, and the next `fleet up` on the same
 * data folder stops the ones still alive before it starts its own (they hold the ports).
 */
import fs from 'node:fs/promises'

export interface PidRecord {
  name: string
  pid: number
}

/** Writes the pids of the running children (atomically: write then rename). */
export async function recordPids(file: string, records: readonly PidRecord[]): Promise<void> {
  const tmp = `${file}.tmp`
  await fs.writeFile(tmp, JSON.stringify(records))
  await fs.rename(tmp, file)
}

async function runs(pid: number, marker: string): Promise<boolean> {
  try {
    // The pid may have been reused by an unrelated program: only a process running `marker` counts.
    return (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).includes(marker)
  } catch {
    return false
  }
}

/**
 * Stops (SIGTERM, then SIGKILL after `timeoutMs`) each recorded process that still runs `marker` (the CLI
 * path), removes the record, and returns the names of those it stopped.
 */
export async function stopLeftovers(file: string, marker: string, timeoutMs = 10_000): Promise<string[]> {
  let records: PidRecord[]
  try {
    records = JSON.parse(await fs.readFile(file, 'utf8')) as PidRecord[]
  } catch {
    return []
  }
  const alive: PidRecord[] = []
  for (const r of records) if (Number.isInteger(r.pid) && (await runs(r.pid, marker))) alive.push(r)
  for (const r of alive) process.kill(r.pid, 'SIGTERM')
  const deadline = Date.now() + timeoutMs
  for (const r of alive) {
    while ((await runs(r.pid, marker)) && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 100))
    if (await runs(r.pid, marker)) process.kill(r.pid, 'SIGKILL')
  }
  await fs.rm(file, { force: true })
  return alive.map((r) => `${r.name} (pid ${r.pid})`)
}
