/**
 * The chaos suite's app: the demo shop, plus one job type whose every execution and every applied effect
 * leave a row in PostgreSQL, so the suite can count jobs that ran again after a fault (expected: a dead
 * worker's job runs again) apart from effects applied twice (never expected: `commit` runs once per job).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { accepted, defineApp, defineJob, idempotencyKey, jobClient, jobOwner, Type } from '@fleet-stack/fleet'
import shop from '../apps/shop/index.js'

/** Sleeps `steps` x `ms` with progress; each execution records a run row, the commit one effect row. */
export const chaosWork = defineJob({
  name: 'chaos.work',
  payload: Type.Object({
    ms: Type.Integer({ minimum: 0, maximum: 10_000 }),
    steps: Type.Integer({ minimum: 1, maximum: 20 }),
  }),
  attempts: 8,
  backoff: 200,
  process: async (ctx) => {
    // Observability only: an execution under a PostgreSQL outage still runs (the commit then waits or retries).
    await ctx.db
      .query('INSERT INTO chaos_runs (job_id, attempt, instance, pid) VALUES ($1, $2, $3, $4)', [
        ctx.id,
        ctx.attempt,
        process.env.FLEET_INSTANCE_ID ?? '',
        process.pid,
      ])
      .catch(() => undefined)
    for (let i = 1; i <= ctx.payload.steps; i++) {
      await sleep(ctx.payload.ms, undefined, { signal: ctx.signal })
      await ctx.progress(Math.round((i / ctx.payload.steps) * 100))
    }
    return { instance: process.env.FLEET_INSTANCE_ID ?? '', attempt: ctx.attempt }
  },
  commit: async (tx, output, ctx) => {
    await tx.query('INSERT INTO chaos_effects (job_id, instance) VALUES ($1, $2)', [ctx.id, output.instance])
    return output
  },
})

const schema = `
CREATE TABLE chaos_runs (job_id text NOT NULL, attempt integer NOT NULL, instance text NOT NULL,
  pid integer NOT NULL, started_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE INDEX chaos_runs_job ON chaos_runs (job_id);
CREATE TABLE chaos_effects (job_id text NOT NULL, instance text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE INDEX chaos_effects_job ON chaos_effects (job_id);`

export default defineApp({
  ...shop,
  name: 'chaos',
  title: 'Fleet chaos suite (the shop and a probe job)',
  migrations: [...shop.migrations, { id: '900_chaos_probe', up: schema }],
  jobs: [...shop.jobs, chaosWork],
  routes: [
    ...shop.routes,
    async (app, deps) => {
      const jobs = jobClient(deps)
      app.post<{ Body: unknown }>('/chaos/jobs', async (request, reply) => {
        const owner = await jobOwner(request, { anonymous: true })
        return accepted(
          reply,
          await jobs.submit(chaosWork, request.body, owner, { idempotencyKey: idempotencyKey(request) }),
        )
      })
    },
  ],
})
