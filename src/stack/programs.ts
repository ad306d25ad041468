/** Programs Fleet runs from Debian packages (redis-server; chromium for the browser tests). */
import { execFileSync, spawnSync } from 'node:child_process'
import { MissingProgramError } from './errors.js'

export interface ProgramSpec {
  /** The command looked up on PATH. */
  command: string
  /** The Debian package that provides it. */
  pkg: string
  /** What to do when it cannot be installed (not root, or apt-get failed). */
  otherwise: string
}

/** Finds `command` on PATH; under root installs its package with apt-get when missing. Returns its path. */
export function ensureProgram(spec: ProgramSpec, onLog: (line: string) => void = () => {}): string {
  const which = () =>
    spawnSync('sh', ['-c', `command -v ${spec.command}`], { encoding: 'utf8' }).stdout.trim()
  const found = which()
  if (found) return found
  if (process.getuid?.() !== 0) {
    throw new MissingProgramError(
      spec.command,
      `Install it (Debian/Ubuntu: sudo apt-get install -y ${spec.pkg}) or ${spec.otherwise}.`,
    )
  }
  onLog(`${spec.command} is missing: installing ${spec.pkg} with apt-get (this takes a minute)...`)
  try {
    execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit' })
    execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', spec.pkg], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    })
  } catch (err) {
    throw new MissingProgramError(spec.command, `apt-get could not install it; ${spec.otherwise}.`, {
      cause: err,
    })
  }
  const installed = which()
  if (!installed) throw new MissingProgramError(spec.command, 'apt-get ran but it is still not on PATH.')
  return installed
}
