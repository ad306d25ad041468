/**
 * /healthz: the process is alive (no dependency checked, so a slow database never gets a server killed).
 * /readyz: the process should receive traffic, and what it can still do. Each store is checked
 * (PostgreSQL, the store Redis, the cache Redis): all answer, `ready`; some do, `degraded`, still 200, so
 * the LB keeps it in rotation for what it can serve (cached and stale reads, anonymous pages) while what
 * needs the missing store fails fast with its own coded 503; none does, or draining, 503.
 */
import type { FastifyInstance } from 'fastify'
import type { ProcessDeps } from '../process/deps.js'

/** Shared with the shutdown sequence: set `draining` and readiness turns false at once. */
export interface Readiness {
  draining: boolean
}

/**
 * How long one store may take to answer its readiness check. Well below the LB's health check timeout
 * (FLEET_LB_HEALTH_TIMEOUT, 1 s): a hung store must make /readyz answer `degraded` in time, not make the
 * check itself time out (which would take every server out of the LB at once, as a hung store hangs for all).
 */
const CHECK_TIMEOUT_MS = 300

async function check(fn: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)),
          CHECK_TIMEOUT_MS,
        )
      }),
    ])
    return 'ok'
  } catch (err) {
    return (err as Error).message || 'failed'
  } finally {
    clearTimeout(timer)
  }
}

export function registerHealth(app: FastifyInstance, deps: ProcessDeps, readiness: Readiness): void {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok', instance: deps.instanceId }))

  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    if (readiness.draining) {
      reply.status(503).header('retry-after', '1')
      return { status: 'draining', instance: deps.instanceId }
    }
    const [postgres, redis, cache] = await Promise.all([
      check(() => deps.db.pool.query('SELECT 1')),
      check(() => deps.redis.ping()),
      check(() => deps.cacheRedis.ping()),
    ])
    const checks = { postgres, redis, cache }
    const up = Object.values(checks).filter((c) => c === 'ok').length
    const status = up === 3 ? 'ready' : up > 0 ? 'degraded' : 'unready'
    if (up === 0) reply.status(503).header('retry-after', '1')
    return { status, instance: deps.instanceId, checks }
  })
}
