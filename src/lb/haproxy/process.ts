/**
 * HAProxy as a child process of the `haproxy` engine: started in master-worker mode in its own process
 * group, killed if this process dies (parent-death signal), ready once its runtime API answers, reloaded
 * by a new worker that takes the listeners over (no connection dropped), and stopped softly (it finishes
 * the requests in flight) with a kill after a deadline.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import { portTaken } from '../../errors.js'
import type { Logger } from '../../log.js'
import { RuntimeApi } from './runtime.js'

/** A running HAProxy: its master process, when that exited, what it said last, its two runtime APIs. */
export interface Haproxy {
  readonly child: ChildProcess
  /** Resolves with the master's exit code once it exited. */
  readonly exited: Promise<number | null>
  /** The last 50 lines of its output, for the error when it exits before it is ready. */
  readonly said: readonly string[]
  /** The worker's runtime API (level admin). */
  readonly api: RuntimeApi
  /** The master CLI, which lists the workers. */
  readonly master: RuntimeApi
}

/** Where a HAProxy finds its config and puts its sockets. */
export interface HaproxyFiles {
  configPath: string
  adminSocket: string
  masterSocket: string
}

/**
 * Starts HAProxy (`program`) on `files` and resolves once its runtime API answers; if it does not (it
 * exited, or 15 s passed), its group is killed and the error thrown (a port in use as FLEET_PORT's).
 */
export async function startHaproxy(
  program: string,
  files: HaproxyFiles,
  listen: { port: number; host: string },
  logger: Logger,
): Promise<Haproxy> {
  const api = new RuntimeApi(files.adminSocket)
  const master = new RuntimeApi(files.masterSocket)
  const { child, said } = spawnHaproxy(program, files.configPath, master.socketPath, logger)
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  const haproxy = { child, exited, said, api, master }
  try {
    await untilReady(haproxy, listen.port, listen.host)
  } catch (err) {
    killGroup(child)
    throw err
  }
  return haproxy
}

/**
 * Reloads HAProxy on its (rewritten) config and resolves once the new worker's runtime API answers; the
 * old worker finishes its connections, and the listeners pass to the new one.
 */
export async function reloadHaproxy(h: Haproxy, listen: { port: number; host: string }): Promise<void> {
  // The master CLI lists the current worker; a reload replaces it (the old one finishes its connections).
  const worker = async () => /# workers\n(\d+)/.exec(await h.master.send('show proc').catch(() => ''))?.[1]
  const old = await worker()
  h.child.kill('SIGUSR2')
  const deadline = Date.now() + 30_000
  for (;;) {
    const current = await worker()
    if (current && current !== old) break
    if (Date.now() > deadline) throw new Error('haproxy: the reload did not bring a new worker within 30 s')
    await new Promise((r) => setTimeout(r, 50))
  }
  // The new worker's runtime API answers once it runs.
  await untilReady(h, listen.port, listen.host)
}

/** Stops HAProxy softly; resolves once it exited (its group killed if not within `killAfterMs`). */
export async function stopHaproxy(h: Haproxy, killAfterMs: number): Promise<void> {
  // Soft stop: HAProxy stops listening, finishes the requests in flight (hard-stop-after bounds it).
  h.child.kill('SIGUSR1')
  const timer = setTimeout(() => killGroup(h.child), killAfterMs)
  await h.exited
  clearTimeout(timer)
  killGroup(h.child) // a worker still finishing after its master is gone
}

/** Kills HAProxy's group at once and resolves once its master exited. */
export async function killHaproxy(h: Haproxy): Promise<void> {
  killGroup(h.child)
  await h.exited
}

/** Kills HAProxy's whole process group (master and workers); nothing when it is already gone. */
function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

/** HAProxy in master-worker mode, in the foreground, killed if this process dies (setpriv's parent-death signal). */
function spawnHaproxy(
  program: string,
  configPath: string,
  masterSocket: string,
  logger: Logger,
): { child: ChildProcess; said: string[] } {
  const args = ['-W', '-db', '-S', masterSocket, '-f', configPath]
  const setpriv = fs.existsSync('/usr/bin/setpriv')
  // Its own process group, so that close() can end a worker that outlives the master.
  const how = { stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'], detached: true }
  const child = setpriv
    ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', program, ...args], how)
    : spawn(program, args, how)
  const lines: string[] = []
  const onData = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue
      lines.push(line)
      if (lines.length > 50) lines.shift()
      logger.info({ haproxy: line.trim() }, 'haproxy')
    }
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  return { child, said: lines }
}

/** Resolves once HAProxy's runtime API answers `show info`; throws if it exits first or 15 s pass. */
async function untilReady(h: Haproxy, port: number, host: string): Promise<void> {
  let gone: number | null | undefined
  void h.exited.then((code) => {
    gone = code
  })
  const deadline = Date.now() + 15_000
  for (;;) {
    if (gone !== undefined) {
      const said = h.said.join('\n')
      if (/cannot bind socket|Address already in use/i.test(said)) {
        throw portTaken({ code: 'EADDRINUSE' }, port, 'FLEET_PORT', `the load balancer on ${host}`)
      }
      throw new Error(`haproxy exited (${gone}) before it was ready:\n${said}`)
    }
    const info = await h.api.send('show info', 1_000).catch(() => '')
    if (info.includes('Pid:')) return
    if (Date.now() > deadline) throw new Error('haproxy was not ready within 15 s')
    await new Promise((r) => setTimeout(r, 50))
  }
}
