/**
 * What runs on each host of the bed, from deploy/: the placeholders' values of a host, its files rendered
 * into its own configuration folder (its /etc), and one Service per role with the command and environment
 * those files give. Fleet's roles (lb, web, worker) start from their systemd unit; Redis, the Sentinel and
 * keepalived from their config with the command line their Debian unit uses; PostgreSQL from the cluster the
 * bed made (postgres.ts).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { renderDeployFile, type StartSpec, startSpecOf } from './deploy.js'
import { Service } from './proc.js'
import type { Tools } from './tools.js'
import { type HostDef, hostsWith, type Role, type Topology } from './topology.js'

/** Settings of the whole bed that the placeholders draw on. */
export interface BedSettings {
  subnet: string
  topology: Topology
  /** The bed's folder: `<dir>/<host>/{etc,data,log}` per host. */
  dir: string
  pgPassword: string
  /** The Fleet installation the hosts run (its dist/cli.js): this checkout, or HOSTS_FLEET_DIR. */
  fleetDir: string
  app: string
  admin: { email: string; password: string }
}

export const SENTINEL_PORT = 26379
export const WEB_PORT = 8080
export const WORKER_PORT = 8090
export const LB_PORT = 80
export const LB_ADMIN_PORT = 9090
export const PG_PORT = 5432

export const addrOf = (s: BedSettings, h: HostDef) => `${s.subnet}.${h.octet}`
export const hostFolder = (s: BedSettings, h: HostDef, sub: 'etc' | 'data' | 'log') =>
  path.join(s.dir, h.name, sub)

/** The values of every placeholder of deploy/ on host `h` (docs/deploy.md lists them). */
export function placeholders(s: BedSettings, h: HostDef): Record<string, string> {
  const t = s.topology
  const first = (role: Role) => {
    const host = hostsWith(t, role)[0]
    if (!host) throw new Error(`the topology has no ${role} host`)
    return addrOf(s, host)
  }
  const sentinels = hostsWith(t, 'sentinel').map((x) => `${addrOf(s, x)}:${SENTINEL_PORT}`)
  return {
    NODE: process.execPath,
    FLEET_DIR: s.fleetDir.replace(/\/$/, ''),
    CONF_DIR: hostFolder(s, h, 'etc'),
    DATA_DIR: hostFolder(s, h, 'data'),
    HOST_NAME: h.name,
    HOST_ADDR: addrOf(s, h),
    PG_ADDR: first('postgres'),
    PG_PASSWORD: s.pgPassword,
    STORE_PRIMARY_ADDR: first('store'),
    STORE_PORT: String(t.storePort),
    CACHE_PRIMARY_ADDR: first('cache'),
    CACHE_PORT: String(t.cachePort),
    SENTINELS: sentinels.join(','),
    QUORUM: String(Math.floor(sentinels.length / 2) + 1),
    // An acknowledged store write waits for one replica, when the store has replicas.
    STORE_WAIT_REPLICAS: hostsWith(t, 'store').length > 1 ? '1' : '0',
    APP: s.app,
    ADMIN_EMAIL: s.admin.email,
    ADMIN_PASSWORD: s.admin.password,
  }
}

/** A Redis config's own values: its port and folder, `replicaof` on all but the role's first host. */
function redisValues(s: BedSettings, h: HostDef, role: 'store' | 'cache'): Record<string, string> {
  const port = role === 'store' ? s.topology.storePort : s.topology.cachePort
  const primary = hostsWith(s.topology, role)[0] as HostDef
  const replicas = hostsWith(s.topology, role).length - 1
  return {
    ...placeholders(s, h),
    PORT: String(port),
    DATA_DIR: path.join(hostFolder(s, h, 'data'), `redis-${role}`),
    REPLICAOF: primary === h ? '' : `replicaof ${addrOf(s, primary)} ${port}`,
    // One replica must have acknowledged within the lag for the primary to take writes, when there are any.
    MIN_REPLICAS: replicas > 0 ? '1' : '0',
    CACHE_MAXMEMORY: '128mb',
  }
}

/** keepalived's values: this LB host's priority and its peer (the other LB host). */
function keepalivedValues(s: BedSettings, h: HostDef): Record<string, string> {
  const lbs = hostsWith(s.topology, 'lb')
  const peer = lbs.find((x) => x !== h)
  if (!peer || s.topology.vipOctet === undefined) throw new Error('keepalived needs two LB hosts and a VIP')
  return {
    ...placeholders(s, h),
    IFACE: 'eth0',
    VRID: '77',
    PRIORITY: String(150 - 10 * lbs.indexOf(h)),
    PEER_ADDR: addrOf(s, peer),
    VIP: `${s.subnet}.${s.topology.vipOctet}`,
    PREFIX_LEN: '24',
  }
}

/** Writes deploy/<from>, filled with `values`, to the host's etc folder as `to`; resolves with its path. */
async function install(s: BedSettings, h: HostDef, from: string, to: string, values: Record<string, string>) {
  const file = path.join(hostFolder(s, h, 'etc'), to)
  await fs.writeFile(file, await renderDeployFile(from, values))
  return file
}

/** The start of Fleet role `role` on `h`: its unit and env files installed, read back as systemd would. */
export async function fleetStart(
  s: BedSettings,
  h: HostDef,
  role: 'lb' | 'web' | 'worker',
): Promise<StartSpec> {
  const values = placeholders(s, h)
  for (const f of ['fleet.env', `${role}.env`, 'app.env']) await install(s, h, `systemd/${f}`, f, values)
  const unit = await install(s, h, `systemd/fleet-${role}.service`, `fleet-${role}.service`, values)
  return startSpecOf(await fs.readFile(unit, 'utf8'))
}

/** The services of host `h`, in start order, each with its files in place. */
export async function servicesOf(s: BedSettings, h: HostDef, tools: Tools, ns: string): Promise<Service[]> {
  for (const sub of ['etc', 'data', 'log'] as const)
    await fs.mkdir(hostFolder(s, h, sub), { recursive: true })
  const log = (name: string) => path.join(hostFolder(s, h, 'log'), `${name}.log`)
  const plain = (command: string, args: string[]): StartSpec => ({
    command,
    args,
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    restartSec: 1,
  })
  const out: Service[] = []
  for (const role of h.roles) {
    if (role === 'postgres') {
      const data = path.join(hostFolder(s, h, 'data'), 'postgres')
      const spec = plain('/usr/bin/setpriv', [
        '--reuid=postgres',
        '--regid=postgres',
        '--init-groups',
        path.join(tools.pgBin, 'postgres'),
        '-D',
        data,
      ])
      out.push(new Service('postgres', ns, spec, log('postgres')))
    } else if (role === 'store' || role === 'cache') {
      const values = redisValues(s, h, role)
      await fs.mkdir(values.DATA_DIR as string, { recursive: true })
      const conf = await install(s, h, `redis/${role}.conf`, `redis-${role}.conf`, values)
      out.push(new Service(`redis-${role}`, ns, plain(tools.redisServer, [conf]), log(`redis-${role}`)))
    } else if (role === 'sentinel') {
      const values = { ...placeholders(s, h), DATA_DIR: path.join(hostFolder(s, h, 'data'), 'sentinel') }
      await fs.mkdir(values.DATA_DIR, { recursive: true })
      const conf = await install(s, h, 'redis/sentinel.conf', 'sentinel.conf', values)
      out.push(new Service('sentinel', ns, plain(tools.redisServer, [conf, '--sentinel']), log('sentinel')))
    } else {
      const spec = await fleetStart(s, h, role)
      out.push(new Service(`fleet-${role}`, ns, spec, log(`fleet-${role}`)))
      if (role === 'lb' && hostsWith(s.topology, 'lb').length > 1) {
        const conf = await install(
          s,
          h,
          'keepalived/keepalived.conf',
          'keepalived.conf',
          keepalivedValues(s, h),
        )
        const run = hostFolder(s, h, 'data')
        const args = ['--dont-fork', '--vrrp', '--log-console', '--log-detail', '-f', conf]
        args.push('-p', path.join(run, 'keepalived.pid'), '-r', path.join(run, 'vrrp.pid'))
        out.push(new Service('keepalived', ns, plain(tools.keepalived, args), log('keepalived')))
      }
    }
  }
  return out
}
