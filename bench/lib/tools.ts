/**
 * The outside programs a benchmark drives (wrk, haproxy, nginx): found on PATH, or installed with apt-get
 * when one is missing (needs root; Debian and Ubuntu package names equal the command names for these).
 */
import { execFileSync, spawnSync } from 'node:child_process'

/** True when `cmd` is on PATH. */
export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd]).status === 0
}

/**
 * Installs those of `tools` that are not on PATH with apt-get (apt-get update once first); throws when some
 * are missing and there is no apt-get.
 * @example ensureTools(['wrk'])
 */
export function ensureTools(tools: readonly string[]): void {
  const missing = tools.filter((c) => !has(c))
  if (missing.length === 0) return
  if (!has('apt-get')) throw new Error(`missing ${missing.join(', ')} and no apt-get to install them`)
  process.stdout.write(`installing ${missing.join(', ')} with apt-get ...\n`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env,
  })
  const still = missing.filter((c) => !has(c))
  if (still.length > 0) throw new Error(`apt-get did not provide ${still.join(', ')}`)
}
