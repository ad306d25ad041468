/**
 * The PostgreSQL host's cluster, made once when the bed is built (as a package's postinst would): initdb as
 * the system user `postgres` with the superuser `fleet` and its password, listening on the host's address,
 * password (scram) logins from the bed's subnet only; then the database `fleet`, once the server runs.
 */
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'

const exec = promisify(execFile)

function postgresIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
  try {
    return { uid: id('-u'), gid: id('-g') }
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'])
    return { uid: id('-u'), gid: id('-g') }
  }
}

/** initdb into `data` (owned by postgres), configured for `addr` and logins from `subnet`.0/24. */
export async function initCluster(opts: {
  pgBin: string
  data: string
  addr: string
  subnet: string
  password: string
}): Promise<void> {
  const { uid, gid } = postgresIds()
  await fs.mkdir(opts.data, { recursive: true, mode: 0o700 })
  await fs.chown(opts.data, uid, gid)
  const pwfile = path.join(path.dirname(opts.data), 'pgpass.tmp')
  await fs.writeFile(pwfile, `${opts.password}\n`, { mode: 0o600 })
  await fs.chown(pwfile, uid, gid)
  try {
    await exec(
      '/usr/bin/setpriv',
      [
        '--reuid=postgres',
        '--regid=postgres',
        '--init-groups',
        path.join(opts.pgBin, 'initdb'),
        '-D',
        opts.data,
        '-U',
        'fleet',
        `--pwfile=${pwfile}`,
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        '-E',
        'UTF8',
        '--no-instructions',
      ],
      { timeout: 120_000, cwd: '/' },
    )
  } finally {
    await fs.rm(pwfile, { force: true })
  }
  await fs.appendFile(
    path.join(opts.data, 'postgresql.conf'),
    [
      '',
      '# the test bed (hosts/postgres.ts)',
      `listen_addresses = '${opts.addr}'`,
      'port = 5432',
      `unix_socket_directories = '${opts.data}'`,
      'max_connections = 200',
      'shared_buffers = 128MB',
      'fsync = on',
      'synchronous_commit = on',
      '',
    ].join('\n'),
  )
  await fs.writeFile(
    path.join(opts.data, 'pg_hba.conf'),
    ['local all all trust', `host all all ${opts.subnet}.0/24 scram-sha-256`, ''].join('\n'),
  )
}

/** Creates the database `fleet` when missing (the server must accept connections). */
export async function createDatabase(addr: string, password: string): Promise<void> {
  const client = new pg.Client({
    host: addr,
    port: 5432,
    user: 'fleet',
    password,
    database: 'postgres',
    connectionTimeoutMillis: 2_000,
  })
  await client.connect()
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = 'fleet'")
    if (!rowCount) await client.query('CREATE DATABASE fleet')
  } finally {
    await client.end()
  }
}
