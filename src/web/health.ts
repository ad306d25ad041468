/**
 * /healthz: the process is alive (no dependency checked, so a slow database never gets a server killed).
 * /readyz: the process should receive traffic: not draining, PostgreSQL and the store Redis answer.
 */
import type { FastifyInstance } from 'fastify'
import type { AppDeps } from './deps.js'

/** Shared with the shutdown sequence: set `draining` and readiness turns false at once. */
export interface Readiness {
  draining: boolean
}

const CHECK_TIMEOUT_MS = 1_000

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

export function registerHealth(app: FastifyInstance, deps: AppDeps, readiness: Readiness): void {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok', instance: deps.instanceId }))

  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    if (readiness.draining) {
      reply.status(503).header('retry-after', '1')
      return { status: 'draining', instance: deps.instanceId }
    }
    const [postgres, redis] = await Promise.all([
      check(() => deps.db.pool.query('SELECT 1')),
      check(() => deps.redis.ping()),
    ])
    const ok = postgres === 'ok' && redis === 'ok'
    if (!ok) reply.status(503).header('retry-after', '1')
    return { status: ok ? 'ready' : 'unready', instance: deps.instanceId, checks: { postgres, redis } }
  })
}
