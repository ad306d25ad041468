/**
 * The report of a run: per phase (the baseline, then each fault) what users saw, the run's targets and
 * which were missed, printed and written to chaos/last-run.md; then the failed requests of each phase by
 * route and answer. The header names the load balancer's engine (CHAOS_LB_ENGINE).
 *
 * Targets: no failed catalog read in any phase but the kill of `fleet up`; every phase whole again within
 * 60 s; no acknowledged write or accepted job lost; no effect applied twice; every completed chaos job left
 * its effect row; a dead worker's job running again within 5 s; no process left after `fleet up` was killed.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { JobOutcome, LostWrite } from './checks.js'
import { failed, type Sample } from './client.js'
import type { Fault, FaultResult, Measures } from './faults/index.js'
import { log, t0 } from './log.js'
import { HOLD_MS, LB_ENGINE } from './options.js'
import { root } from './stack.js'
import type { AcceptedJob, Writer } from './traffic.js'

/** The baseline or one fault, from its injection until 3 s after the stack was whole again. */
export interface Phase {
  fault: Fault
  start: number
  end: number
  result: FaultResult
}

/** Everything a run found, for its report. */
export interface RunFacts {
  phases: Phase[]
  samples: readonly Sample[]
  jobs: readonly AcceptedJob[]
  writers: readonly Writer[]
  outcomes: Map<string, JobOutcome>
  lost: LostWrite[]
  measures: Measures
}

interface Row {
  fault: string
  requests: number
  failedCatalog: number
  failedSession: number
  failedWrites: number
  codes: string
  longestMs: number
  longestCatalogMs: number
  failingForMs: number
  wholeInMs: number | undefined
  writesLost: number
  jobsLost: number
  jobsRerun: number
  effectsTwice: number
  notes: string
}

function rowOf({ fault, start, end, result }: Phase, facts: RunFacts): Row {
  const { outcomes } = facts
  const inPhase = facts.samples.filter((s) => s.start >= start && s.start < end)
  const bad = inPhase.filter(failed)
  const codes = new Map<string, number>()
  for (const s of bad) codes.set(s.code, (codes.get(s.code) ?? 0) + 1)
  const phaseJobs = facts.jobs.filter((j) => j.at >= start && j.at < end)
  return {
    fault: fault.name,
    requests: inPhase.length,
    failedCatalog: bad.filter((s) => s.kind === 'catalog').length,
    failedSession: bad.filter((s) => s.kind === 'session').length,
    failedWrites: bad.filter((s) => s.kind !== 'catalog' && s.kind !== 'session').length,
    codes: [...codes]
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c} x${n}`)
      .join(', '),
    longestMs: Math.max(0, ...inPhase.map((s) => s.ms)),
    longestCatalogMs: Math.max(0, ...inPhase.filter((s) => s.kind === 'catalog').map((s) => s.ms)),
    failingForMs: bad.length
      ? Math.max(...bad.map((s) => s.start + s.ms)) - Math.min(...bad.map((s) => s.start))
      : 0,
    wholeInMs: result.wholeAt === undefined ? undefined : result.wholeAt - start,
    writesLost: facts.lost.filter((l) => l.at >= start && l.at < end).length,
    jobsLost: phaseJobs.filter((j) => outcomes.get(j.id)?.state !== 'completed').length,
    jobsRerun: phaseJobs.filter((j) => (outcomes.get(j.id)?.attempts ?? 0) > 1).length,
    effectsTwice: phaseJobs.filter((j) => (outcomes.get(j.id)?.effects ?? 0) > 1).length,
    notes: result.notes.join('; '),
  }
}

/**
 * The failed requests of each phase that had some, grouped by route and answer, most first:
 * `- SIGKILL web-1: PUT /api/cart/items/:id -> 502 FLEET_E_LB_BAD_GATEWAY x1`.
 */
function failures(phases: Phase[], samples: readonly Sample[]): string[] {
  const lines: string[] = []
  for (const { fault, start, end } of phases) {
    const groups = new Map<string, number>()
    for (const s of samples)
      if (s.start >= start && s.start < end && failed(s)) {
        const key = `${s.route} -> ${s.status || 'no answer'} ${s.code}`
        groups.set(key, (groups.get(key) ?? 0) + 1)
      }
    const sorted = [...groups].sort((a, b) => b[1] - a[1])
    const shown = sorted.slice(0, 8).map(([k, n]) => `${k} x${n}`)
    if (sorted.length > 8) shown.push(`${sorted.length - 8} more kinds`)
    if (shown.length) lines.push(`- ${fault.name}: ${shown.join('; ')}`)
  }
  return lines
}

function table(rows: Row[]): string {
  const head =
    '| fault | requests | failed catalog reads | failed logged-in reads | failed writes | error codes | longest catalog read | longest answer | failing for | whole again in | acked writes lost | jobs lost | jobs run again | effects twice | notes |'
  const sep = `|${' --- |'.repeat(15)}`
  const s = (ms: number | undefined) => (ms === undefined ? 'not within 60 s' : `${(ms / 1000).toFixed(1)} s`)
  const lines = rows.map(
    (r) =>
      `| ${r.fault} | ${r.requests} | ${r.failedCatalog} | ${r.failedSession} | ${r.failedWrites} | ${r.codes || '-'} | ${s(r.longestCatalogMs)} | ${s(r.longestMs)} | ${s(r.failingForMs)} | ${s(r.wholeInMs)} | ${r.writesLost} | ${r.jobsLost} | ${r.jobsRerun} | ${r.effectsTwice} | ${r.notes} |`,
  )
  return [head, sep, ...lines].join('\n')
}

/** Prints the table and the summary, writes them to chaos/last-run.md; resolves with the exit code (1: a target missed). */
export async function report(facts: RunFacts): Promise<number> {
  const { jobs, outcomes, lost, writers, measures } = facts
  const rows = facts.phases.map((p) => rowOf(p, facts))

  // Jobs accepted between phases (none: phases are back to back) or before the first one count too.
  const totalLost = lost.length
  const jobsLost = jobs.filter((j) => outcomes.get(j.id)?.state !== 'completed')
  const twice = jobs.filter((j) => (outcomes.get(j.id)?.effects ?? 0) > 1)
  const chaosJobs = jobs.filter((j) => j.kind === 'chaos')
  const noEffect = chaosJobs.filter(
    (j) => outcomes.get(j.id)?.state === 'completed' && outcomes.get(j.id)?.effects === 0,
  )

  const misses: string[] = []
  for (const r of rows) {
    if (r.fault !== 'SIGKILL fleet up' && r.failedCatalog > 0)
      misses.push(`${r.fault}: ${r.failedCatalog} failed catalog reads (target 0)`)
    if (r.wholeInMs === undefined) misses.push(`${r.fault}: not whole again within 60 s`)
  }
  if (totalLost > 0)
    misses.push(`${totalLost} acknowledged writes lost (target 0): ${lost.map((l) => l.what).join('; ')}`)
  if (jobsLost.length > 0)
    misses.push(
      `${jobsLost.length} accepted jobs did not complete (target 0): ${jobsLost.map((j) => `${j.id} ${outcomes.get(j.id)?.state}`).join(', ')}`,
    )
  if (twice.length > 0) misses.push(`${twice.length} jobs applied their effects twice (target 0)`)
  if (noEffect.length > 0) misses.push(`${noEffect.length} completed chaos jobs left no effect row`)
  const rerun = (ms: number) => (Number.isFinite(ms) ? `${ms} ms` : 'not within 30 s')
  for (const ms of measures.deathToRerun)
    if (ms > 5_000) misses.push(`a dead worker's job ran again after ${rerun(ms)} (target <= 5 s)`)
  if (measures.leftAfterKill > 0)
    misses.push(`${measures.leftAfterKill} processes left after SIGKILL of fleet up (target 0)`)

  const { deathToRerun, leftAfterKill } = measures
  const summary = [
    `${facts.samples.length} requests in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${jobs.length} jobs accepted (${chaosJobs.length} chaos.work, ${jobs.length - chaosJobs.length} thumbnails), ${jobsLost.length} not completed, ${jobs.filter((j) => (outcomes.get(j.id)?.attempts ?? 0) > 1).length} ran more than once (attempts > 1), ${twice.length} applied twice`,
    `acknowledged writes checked at the end: ${writers.reduce((n, w) => n + w.reviews.length + [...w.cart.values()].filter((e) => e.acked > 0).length, 0)} (reviews and last cart quantities), ${totalLost} lost; sessions of ${writers.length} writers: ${lost.some((l) => l.what.startsWith('the session')) ? 'LOST' : 'kept'}`,
    `a dead worker's job running again: ${deathToRerun.length ? deathToRerun.map(rerun).join(', ') : 'not measured'}; processes left after SIGKILL of fleet up: ${leftAfterKill < 0 ? 'not measured' : leftAfterKill}`,
    misses.length ? `TARGETS MISSED:\n- ${misses.join('\n- ')}` : 'every target met',
  ]
  const header = `load balancer engine: ${LB_ENGINE}`
  const failedRequests = failures(facts.phases, facts.samples)
  const failedPart = failedRequests.length
    ? ['Failed requests by fault (route, then the answer: status and error code):', '', ...failedRequests]
    : ['No request failed.']
  const command = LB_ENGINE === 'node' ? 'npm run chaos' : `CHAOS_LB_ENGINE=${LB_ENGINE} npm run chaos`
  const markdown = [
    `# Chaos run, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${header}`,
    '',
    `\`${command}\`: 3 web servers, 2 workers, the load balancer's ${LB_ENGINE} engine, load through the LB (4 anonymous catalog readers, 1 logged-in reader, 3 writers, 1 image uploader, 1 job submitter); faults held ${HOLD_MS / 1000} s; ${os.cpus().length} cores.`,
    '',
    table(rows),
    '',
    ...summary.map((l) => `${l}  `),
    '',
    ...failedPart,
    '',
  ].join('\n')
  console.log(`\n${header}\n\n${table(rows)}\n\n${summary.join('\n')}\n\n${failedPart.join('\n')}`)
  await fs.writeFile(path.join(root, 'chaos', 'last-run.md'), markdown)
  log('written to chaos/last-run.md')
  return misses.length ? 1 : 0
}
