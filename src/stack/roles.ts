/**
 * The children of the local stack and how each is run: every one is `node dist/cli.js <role>` with the
 * resolved config in its environment, a stable name (`lb-1`, `web-1`, `worker-1`, also its instance id), a
 * log file its logger writes itself (FLEET_LOG_FILE=`<data dir>/logs/<name>.log`) and a readiness probe: a
 * web server's or a worker's /readyz answers 200; the LB's public port accepts connections and its admin
 * /status lists an eligible upstream.
 */
import { fileURLToPath } from 'node:url'
import type { Config } from '../config/index.js'
import type { BackoffOptions } from './backoff.js'
import type { ChildSpec } from './child.js'
import { tcpOpen } from './probe.js'
import { getJson, lbRoutesToAny } from './settle.js'

/** Absolute path of the CLI entry (dist/cli.js next to dist/stack/), so `fleet up` works from any cwd. */
export const cliPath = fileURLToPath(new URL('../cli.js', import.meta.url))

/** Settings that must not leak from the stack's own environment into its children. */
const PER_CHILD = [
  'FLEET_INSTANCE_ID',
  'FLEET_LOG_FILE',
  'FLEET_WEB_PORT',
  'FLEET_WORKER_PORT',
  'FLEET_WEB_ADVERTISE_URL',
  'FLEET_WORKER_ADVERTISE_URL',
  'FLEET_LB_UPSTREAMS',
]

export interface StackLayout {
  /** process.env + the config + the store URLs, shared by every child. */
  env: NodeJS.ProcessEnv
  lbPort: number
  /** Where to reach the LB's public port (127.0.0.1 when it listens on every interface). */
  lbProbeHost: string
  adminPort: number
  /** One port per web server. */
  webPorts: readonly number[]
  /** One port per worker (its /healthz, /readyz, /metrics). */
  workerPorts: readonly number[]
  /** Each child's log file: its logger appends its JSON lines there itself (FLEET_LOG_FILE). */
  logFile: (name: string) => string
  backoff: BackoffOptions
  onLine: ChildSpec['onLine']
}

/** The environment every child starts from. */
export function childEnv(
  config: Config,
  configEnv: Record<string, string>,
  stores: { databaseUrl: string; redisUrl: string; cacheRedisUrl: string },
  ports: { lbPort: number; adminPort: number },
): NodeJS.ProcessEnv {
  // FLEET_* variables that name no setting were warned about by fleet up (and are ignored): the children
  // do not repeat the warning.
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('FLEET_') || k in configEnv),
  )
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    ...configEnv,
    DATABASE_URL: stores.databaseUrl,
    REDIS_URL: stores.redisUrl,
    CACHE_REDIS_URL: stores.cacheRedisUrl,
    FLEET_PORT: String(ports.lbPort),
    FLEET_LB_ADMIN_PORT: String(ports.adminPort),
    FLEET_DATA_DIR: config.dataDir,
  }
  for (const k of PER_CHILD) delete env[k]
  return env
}

/** The specs of every child, in start order: web servers, workers, then the LB. */
export function stackChildren(layout: StackLayout): ChildSpec[] {
  const node = (role: string) => ({ command: process.execPath, args: [cliPath, role] })
  const common = (name: string) => ({
    logFile: layout.logFile(name),
    writesOwnLog: true,
    onLine: layout.onLine,
    backoff: layout.backoff,
  })
  const env = (name: string, own: Record<string, string> = {}) => ({
    ...layout.env,
    FLEET_INSTANCE_ID: name,
    FLEET_LOG_FILE: layout.logFile(name),
    ...own,
  })
  const specs: ChildSpec[] = []
  layout.webPorts.forEach((port, i) => {
    const name = `web-${i + 1}`
    specs.push({
      role: 'web',
      name,
      ...node('web'),
      ...common(name),
      env: env(name, { FLEET_WEB_PORT: String(port) }),
      port,
      readiness: { kind: 'http', url: `http://127.0.0.1:${port}/readyz` },
    })
  })
  layout.workerPorts.forEach((port, i) => {
    const name = `worker-${i + 1}`
    specs.push({
      role: 'worker',
      name,
      ...node('worker'),
      ...common(name),
      env: env(name, { FLEET_WORKER_PORT: String(port) }),
      port,
      // Heavy jobs must not starve the web tier of CPU: the lowest priority (bench/jobs.ts part (c)).
      nice: 19,
      readiness: { kind: 'http', url: `http://127.0.0.1:${port}/readyz` },
    })
  })
  specs.push({
    role: 'lb',
    name: 'lb-1',
    ...node('lb'),
    ...common('lb-1'),
    env: env('lb-1'),
    port: layout.lbPort,
    // Ready: its public port accepts connections and, when there are web servers, it routes to one of them
    // (so "fleet is up" means a request through it gets an answer).
    readiness:
      layout.webPorts.length === 0
        ? { kind: 'tcp', port: layout.lbPort, host: layout.lbProbeHost }
        : {
            kind: 'custom',
            check: async () =>
              (await tcpOpen(layout.lbPort, layout.lbProbeHost)) &&
              lbRoutesToAny(await getJson(`http://127.0.0.1:${layout.adminPort}/status`)),
          },
  })
  return specs
}
