/**
 * The outside programs a benchmark drives (wrk, haproxy, nginx; taskset and pgrep for pinning and process
 * trees): found on PATH, or installed with apt-get when one is missing (needs root). `.ci/run` installs the
 * same packages up front.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'

/** The Debian/Ubuntu package of a command, where its name differs from the command's. */
const PACKAGES: Record<string, string> = { pgrep: 'procps', taskset: 'util-linux', h2load: 'nghttp2-client' }

/** Tells invoke-rc.d / deb-systemd-invoke not to start services (nginx, haproxy) that packages install. */
const POLICY_RC_D = '/usr/sbin/policy-rc.d'

/** True when `cmd` is on PATH. */
export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd]).status === 0
}

/**
 * Installs those of `tools` that are not on PATH with apt-get (apt-get update once first); throws when some
 * are missing and they cannot be installed (no apt-get, or not root). The packages' services (nginx's and
 * haproxy's, which would listen on every address) are not started: a policy-rc.d that forbids it is in place
 * during the install unless the machine has its own.
 * @example ensureTools(['wrk'])
 */
export function ensureTools(tools: readonly string[]): void {
  const missing = tools.filter((c) => !has(c))
  if (missing.length === 0) return
  const pkgs = [...new Set(missing.map((c) => PACKAGES[c] ?? c))]
  const hint = `install them (Debian/Ubuntu: apt-get install ${pkgs.join(' ')})`
  if (!has('apt-get')) throw new Error(`missing ${missing.join(', ')} and no apt-get: ${hint}`)
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')}; not root: ${hint}`)
  process.stdout.write(`installing ${pkgs.join(', ')} with apt-get ...\n`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const ownPolicy = !fs.existsSync(POLICY_RC_D)
  if (ownPolicy)
    fs.writeFileSync(POLICY_RC_D, '#!/bin/sh\n# fleet bench: no service starts\nexit 101\n', { mode: 0o755 })
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], {
      stdio: 'inherit',
      env,
    })
  } finally {
    if (ownPolicy) fs.rmSync(POLICY_RC_D, { force: true })
  }
  const still = missing.filter((c) => !has(c))
  if (still.length > 0) throw new Error(`apt-get did not provide ${still.join(', ')}`)
}
