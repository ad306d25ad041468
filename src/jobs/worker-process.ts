/**
 * One worker process from start to exit (`fleet worker`): open connections, migrate, start the job runner,
 * serve /healthz /readyz /metrics, announce itself in the registry as role `worker`; on stop, turn
 * draining, stop taking jobs, let the active ones finish within FLEET_SHUTDOWN_TIMEOUT and hand back the
 * rest, deregister, close everything.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Config } from '../config/index.js'
import type { Migration } from '../db/migrate.js'
import { portTaken } from '../errors.js'
import type { ProcessDeps } from '../process/deps.js'
import { closeDeps, openDeps, prepareDeps } from '../process/open.js'
import { advertisedUrl, logAdvertised } from '../registry/advertise.js'
import { registerProcess } from '../registry/registration.js'
import { CpuPool } from './cpu-pool.js'
import { DeadWorkerWatch } from './dead-workers.js'
import type { AnyJobType } from './define.js'
import { JobRunner } from './runner.js'
import { upsertSchedules } from './schedules.js'

export interface RunningWorker {
  deps: ProcessDeps
  runner: JobRunner
  /** Where /healthz, /readyz and /metrics answer. */
  url: string
  stop(): Promise<void>
}

export interface WorkerOptions {
  /** Migrations to apply before taking jobs (default: Fleet's own). */
  migrations?: readonly Migration[]
  /** Runs once connections are open and migrations applied, before jobs are taken (e.g. start the cache). */
  beforeStart?: (deps: ProcessDeps) => Promise<void>
  /** Runs after the runner stopped, before the connections close (release what beforeStart opened). */
  afterStop?: (deps: ProcessDeps) => Promise<void>
}

/** Starts a worker for `types`; resolves once it takes jobs and is announced. */
export async function startWorker(
  config: Config,
  types: readonly AnyJobType[],
  options: WorkerOptions = {},
): Promise<RunningWorker> {
  const address = (port: number) =>
    advertisedUrl({
      host: config.workerHost,
      port,
      advertiseUrl: config.workerAdvertiseUrl,
      settings: { host: 'FLEET_WORKER_HOST', advertise: 'FLEET_WORKER_ADVERTISE_URL' },
    })
  await address(config.workerPort) // an address nobody else reaches is refused before anything opens
  const deps = openDeps(config, 'worker')
  const { logger } = deps
  await prepareDeps(deps, options.migrations)
  await options.beforeStart?.(deps)
  const cpu = types.some((t) => t.cpu) ? new CpuPool(config.workerThreads) : undefined
  const runner = new JobRunner(types, {
    config,
    logger,
    db: deps.db,
    metrics: deps.metrics,
    instanceId: deps.instanceId,
    cpu,
  })
  let draining = false

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const send = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
      res.end(body)
    }
    if (path === '/healthz') return send(200, JSON.stringify({ status: 'ok', instance: deps.instanceId }))
    if (path === '/readyz') {
      const ready = !draining && runner.ready
      return send(
        ready ? 200 : 503,
        JSON.stringify({
          status: ready ? 'ready' : draining ? 'draining' : 'not ready',
          active: runner.activeCount,
        }),
      )
    }
    if (path === '/metrics') {
      deps.metrics.metrics().then(
        (text) => send(200, text, deps.metrics.contentType),
        (err: Error) => send(500, JSON.stringify({ error: err.message })),
      )
      return
    }
    send(404, JSON.stringify({ error: { code: 'FLEET_E_HTTP_NOT_FOUND', message: `no route ${path}` } }))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        portTaken(
          err,
          config.workerPort,
          'FLEET_WORKER_PORT',
          `the worker's health port on ${config.workerHost}`,
        ),
      ),
    )
    server.listen(config.workerPort, config.workerHost, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const advertised = await address(port)
  logAdvertised(logger, advertised, 'FLEET_WORKER_ADVERTISE_URL')
  const { url } = advertised
  const queues = types.map((t) => t.name)
  const registration = registerProcess(deps, 'worker', url, 'starting', { queues })
  await registration.start()
  await runner.start()
  // Any worker hands on the jobs of a worker whose registry entry expired (on any host, without fleet up).
  const deadWorkers = new DeadWorkerWatch({ redis: deps.redis, config, queues, logger })
  deadWorkers.start()
  await upsertSchedules(types, runner.queues, config, logger)
  await registration.setState('ready')
  logger.info({ url, types: types.map((t) => t.name), threads: cpu?.threads ?? 0 }, 'worker ready')

  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= (async () => {
      draining = true
      await deadWorkers.stop()
      await registration.setState('draining')
      const { handedBack } = await runner.stop(config.shutdownTimeout)
      if (handedBack > 0) logger.warn({ handedBack }, 'handed active jobs back to the queue')
      await registration.stop()
      await cpu?.close()
      await options.afterStop?.(deps)
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
      await closeDeps(deps)
      logger.info('worker stopped')
    })()
    return stopping
  }
  return { deps, runner, url, stop }
}
