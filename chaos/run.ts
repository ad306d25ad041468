/**
 * The chaos suite (`npm run chaos`): the whole stack as `fleet up` runs it (3 web servers, 2 workers, the
 * embedded PostgreSQL and two redis-servers, on free ports and a fresh data folder), under steady mixed
 * load through the load balancer, takes one fault after another and prints, per fault, what users saw:
 *
 *   requests, failed anonymous catalog reads, failed logged-in reads, failed writes, the error codes,
 *   the longest answer, how long failures went on, how long the stack took to be whole again, and the
 *   acknowledged writes and jobs lost, jobs run again, effects applied twice.
 *
 * Faults: SIGKILL and SIGSTOP (held CHAOS_HOLD, 10 s) of a web server, a worker (mid-job: the time from its
 * death to the job running again is measured), the store Redis, the cache Redis, PostgreSQL (the whole
 * process tree); a rolling restart (`fleet restart web`); SIGKILL of `fleet up` itself (processes left
 * after it, then a new `fleet up` on the same folder and ports). The table goes to stdout and to
 * chaos/last-run.md; the exit code is 1 when a target is missed (see the targets in report.ts).
 *
 * Bounded: each fault waits at most 60 s for the stack to be whole again; the run takes about 3 minutes.
 * Env: CHAOS_HOLD (10s), CHAOS_ONLY (comma-separated fault names), CHAOS_KEEP=1 (keep the data folder),
 * CHAOS_LB_ENGINE (the load balancer's engine: node, the default, or haproxy; in the report's header).
 * It runs dist/: `npm run chaos` builds first.
 *
 * The parts: stack.ts (`fleet up` and `fleet status`), client.ts and traffic.ts (the load), faults/ (one
 * module per kind of fault), checks.ts (writes and jobs checked after the run), report.ts (table, targets).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { jobOutcomes, lostWrites } from './checks.js'
import { Client, failed } from './client.js'
import { baseline, FAULTS, type FaultContext, type Measures } from './faults/index.js'
import { log } from './log.js'
import { HOT_PRODUCTS, KEEP, LB_ENGINE } from './options.js'
import { type Phase, report } from './report.js'
import { Stack } from './stack.js'
import { Traffic } from './traffic.js'
import { sleep, until } from './wait.js'

async function main(): Promise<number> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-chaos-'))
  await fs.chmod(dir, 0o755) // the embedded PostgreSQL runs as `postgres` under root
  const stack = await Stack.create(dir)
  const client = new Client(stack.base)
  const traffic = new Traffic(client)
  // The stack's PostgreSQL, outside Fleet (connects on first use, once the stack is up).
  const db = new pg.Pool({
    connectionString: `postgres://postgres@127.0.0.1:${stack.env.FLEET_PG_PORT}/fleet`,
    max: 2,
    connectionTimeoutMillis: 2_000,
    query_timeout: 5_000,
  })
  db.on('error', () => undefined)
  let code = 1
  try {
    code = await chaos(stack, client, traffic, db)
  } finally {
    void traffic.stop() // stops the loops; their last requests need no waiting for
    await stack.stop()
    await db.end().catch(() => undefined)
    if (KEEP) log(`data folder kept: ${dir}`)
    else await fs.rm(dir, { recursive: true, force: true })
  }
  return code
}

async function chaos(stack: Stack, client: Client, traffic: Traffic, db: pg.Pool): Promise<number> {
  log(
    `fleet up --app chaos/app.ts in ${stack.dir} (3 web servers, 2 workers), load balancer (engine ${LB_ENGINE}) on ${stack.base}`,
  )
  const up = stack.start()
  const ready = await until(
    async () =>
      (await client.call(undefined, 'GET', '/api/categories')).status === 200 ? stack.whole() : undefined,
    120_000,
    250,
  )
  if (!ready) throw new Error(`the stack did not start within 120 s\n${up.output()}`)
  // The table is the engine's only if the LB runs it (FLEET_LB_ENGINE reached it).
  const engine = await stack.lbEngine()
  if (engine !== LB_ENGINE)
    throw new Error(`the load balancer runs engine ${engine}, not ${LB_ENGINE} (CHAOS_LB_ENGINE)`)

  // Users, sessions, a warm cache.
  await traffic.prepare()
  log(
    `ready: ${traffic.writers.length} writers logged in, ${HOT_PRODUCTS} products warmed; starting the load`,
  )

  traffic.start()
  const measures: Measures = { deathToRerun: [], leftAfterKill: -1 }
  const ctx: FaultContext = { stack, client, db, measures }
  const phases: Phase[] = []
  for (const fault of [baseline, ...FAULTS]) {
    const start = Date.now()
    log(`${fault.name}: ${fault.what}`)
    const result = await fault
      .inject(ctx)
      .catch((err: Error) => ({ wholeAt: undefined, notes: [`failed: ${err.message}`] }))
    if (fault === baseline) await sleep(5_000)
    // Let the tail of the fault show: 3 s more of load after the stack is whole again.
    await sleep(3_000)
    const end = Date.now()
    phases.push({ fault, start, end, result })
    const inPhase = client.samples.filter((s) => s.start >= start && s.start < end)
    log(
      `  ${inPhase.length} requests, ${inPhase.filter(failed).length} failed; ${result.wholeAt ? `whole again after ${((result.wholeAt - start) / 1000).toFixed(1)} s` : 'NOT whole again'}${result.notes.length ? `; ${result.notes.join('; ')}` : ''}`,
    )
    if (!result.wholeAt) break
  }
  await traffic.stop()

  log('load stopped; waiting for every accepted job to end')
  await until(
    async () => {
      const o = await jobOutcomes(db, client, traffic.jobs)
      return [...o.values()].every((v) => ['completed', 'failed', 'cancelled'].includes(v.state))
        ? true
        : undefined
    },
    90_000,
    2_000,
  )
  return report({
    phases,
    samples: client.samples,
    jobs: traffic.jobs,
    writers: traffic.writers,
    outcomes: await jobOutcomes(db, client, traffic.jobs),
    lost: await lostWrites(db, client, traffic.writers),
    measures,
  })
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
