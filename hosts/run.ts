/**
 * `npm run hosts`: the multi-host test bed (issue 20). Builds 13 hosts as network namespaces on this machine
 * (2 LB hosts behind a keepalived virtual address, 3 web hosts, 2 worker hosts, 3 store-Redis hosts each with a
 * Sentinel, a cache-Redis primary and replica, one PostgreSQL host), starts on each what deploy/ says, puts
 * the chaos suite's mixed load on the virtual address, and takes one host fault after another (faults.ts).
 * Per fault one row: requests, failed reads and writes with their answers, the longest answer, the time until
 * the bed is whole again, acknowledged writes lost, jobs lost, run again, applied twice (the chaos suite's
 * ledger, checked at the end). The table goes to stdout, hosts/last-run.md and docs/deploy.md.
 *
 * Everything it made (namespaces, links, processes, its folder in the temp folder) is removed at the end, on
 * SIGINT/SIGTERM and when a step fails; a run finds and removes what a killed run left (prefix `fleetbed`).
 * Env: HOSTS_HOLD (how long a powered-off host stays off, 15s), HOSTS_ONLY (comma-separated words: only the
 * faults whose name contains one), HOSTS_KEEP=1 (keep the bed's folder: logs, configs), HOSTS_FLEET_DIR (the
 * Fleet installation the hosts run, a folder with a built dist/; default this checkout, which `npm run hosts`
 * builds first). Needs root and iproute2; installs postgresql-15 and keepalived when missing.
 */
import { execFileSync } from 'node:child_process'
import pg from 'pg'
import { jobOutcomes, lostWrites } from '../chaos/checks.js'
import { Client, failed } from '../chaos/client.js'
import { log } from '../chaos/log.js'
import { Traffic } from '../chaos/traffic.js'
import { sleep, until } from '../chaos/wait.js'
import { Bed } from './bed.js'
import { FAULTS, type FaultContext, HOLD_MS, vipHolder } from './faults.js'
import { Freshness } from './freshness.js'
import { type Phase, writeReport } from './report.js'
import { full } from './topology.js'

const PREFIX = 'fleetbed'
const ONLY = (process.env.HOSTS_ONLY ?? '').split(',').filter(Boolean)

const bed = new Bed(full, {
  prefix: PREFIX,
  subnet: '10.77.0',
  log,
  fleetDir: process.env.HOSTS_FLEET_DIR || undefined,
})
let traffic: Traffic | undefined
let stopping: Promise<void> | undefined

/** Stops the load and removes the bed, once (the end of the run, a signal, a failure). */
function teardown(): Promise<void> {
  stopping ??= (async () => {
    void traffic?.stop()
    const removed = await bed.down().catch((err: Error) => [`teardown failed: ${err.message}`])
    log(`bed removed (${removed.length} namespaces and links)`)
  })()
  return stopping
}

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    log(`${signal}: removing the bed`)
    void teardown().then(() => process.exit(130))
  })

/** What of the bed is still on this machine (namespaces, links, folders of the prefix). */
function leftovers(): string[] {
  const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
  return [
    ...ns.split('\n').filter((l) => l.startsWith(`${PREFIX}-`)),
    ...links.split('\n').filter((l) => l.includes(` ${PREFIX}-`)),
    ...Bed.leftoverFolders(PREFIX),
  ]
}

async function main(): Promise<number> {
  const t0 = Date.now()
  log(`building ${full.hosts.length} hosts as network namespaces (${PREFIX}-*, 10.77.0.0/24)`)
  await bed.up()
  const client = new Client(bed.entry)
  traffic = new Traffic(client)
  await traffic.prepare()
  const db = new pg.Pool({
    connectionString: `postgres://fleet:${bed.settings.pgPassword}@${bed.addr('pg1')}:5432/fleet`,
    max: 2,
    connectionTimeoutMillis: 2_000,
  })
  db.on('error', () => undefined)
  log(
    `load on ${bed.entry} (held by ${await vipHolder(bed)}): 4 catalog readers, 1 logged-in reader, 3 writers, 1 uploader, 1 job submitter`,
  )
  const list = await client.call(undefined, 'GET', '/api/products?limit=100')
  const items = (list.body as { items: { id: number }[] }).items
  const freshness = new Freshness(client, (items[items.length - 1] as { id: number }).id)
  await freshness.start()
  traffic.start()
  const ctx: FaultContext = { bed, client, db }
  const phases: Phase[] = []
  const baselineStart = Date.now()
  await sleep(10_000)
  phases.push({
    name: 'none (baseline)',
    start: baselineStart,
    end: Date.now(),
    result: { wholeAt: baselineStart, notes: [] },
  })
  for (const fault of FAULTS.filter((f) => ONLY.length === 0 || ONLY.some((o) => f.name.includes(o)))) {
    const start = Date.now()
    log(`${fault.name}: ${fault.what}`)
    const result = await fault
      .inject(ctx)
      .catch((err: Error) => ({ wholeAt: undefined, notes: [`failed: ${err.message}`] }))
    await sleep(3_000) // the tail of the fault
    const end = Date.now()
    phases.push({ name: fault.name, start, end, result })
    const inPhase = client.samples.filter((x) => x.start >= start && x.start < end)
    log(
      `  ${inPhase.length} requests, ${inPhase.filter(failed).length} failed; ${result.wholeAt ? `whole again after ${((result.wholeAt - start) / 1000).toFixed(1)} s` : 'NOT whole again'}; ${result.notes.join('; ')}`,
    )
    if (!result.wholeAt) {
      log(`the bed is not whole: stopping the faults here\n${await bed.tails(8)}`)
      break
    }
  }
  await Promise.all([traffic.stop(), freshness.stop()])
  log('load stopped; waiting for every accepted job to end (at most 120 s)')
  await until(
    async () => {
      const o = await jobOutcomes(db, client, traffic?.jobs ?? [])
      return [...o.values()].every((v) => ['completed', 'failed', 'cancelled'].includes(v.state))
        ? true
        : undefined
    },
    120_000,
    2_000,
  )
  const outcomes = await jobOutcomes(db, client, traffic.jobs)
  const lost = await lostWrites(db, client, traffic.writers)
  await db.end().catch(() => undefined)
  await teardown()
  const left = leftovers()
  const jobsLost = traffic.jobs.filter((j) => outcomes.get(j.id)?.state !== 'completed')
  await writeReport({
    phases,
    samples: client.samples,
    jobs: traffic.jobs,
    outcomes,
    lost,
    stale: freshness.stale,
    summary: [
      `${full.hosts.length} hosts (2 LB behind a keepalived VIP, 3 web, 2 worker, 3 store Redis + Sentinel, 2 cache Redis, 1 PostgreSQL), the chaos suite's load on the VIP; powered-off hosts held ${HOLD_MS / 1000} s; REDIS_URL ${bed.redisUrlForm()}.`,
      `${client.samples.length} requests in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${traffic.jobs.length} jobs accepted, ${jobsLost.length} not completed${jobsLost.length ? ` (${countBy(jobsLost.map((j) => `${j.kind} ${outcomes.get(j.id)?.state}`))})` : ''}`,
      `acknowledged writes checked at the end: ${traffic.writers.reduce((n, w) => n + w.reviews.length + [...w.cart.values()].filter((e) => e.acked > 0).length, 0)}, lost: ${lost.length}${lost.length ? ` (${lost.map((l) => l.what).join('; ')})` : ''}`,
      `stale reads: ${freshness.stale.length} of ${freshness.reads} reads of a product page changed ${freshness.writes} times (every 300 ms, each change acknowledged before the reads it is checked against began)`,
      `left on this machine after the run: ${left.length ? left.join(', ') : 'nothing'}`,
    ],
  })
  return jobsLost.length ||
    lost.length ||
    left.length ||
    freshness.stale.length ||
    phases.some((p) => !p.result.wholeAt)
    ? 1
    : 0
}

/** `a x3, b x1` from a list of words. */
function countBy(words: string[]): string {
  const n = new Map<string, number>()
  for (const w of words) n.set(w, (n.get(w) ?? 0) + 1)
  return [...n].map(([w, k]) => `${w} x${k}`).join(', ')
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    console.error(err)
    await teardown()
    process.exit(1)
  },
)
