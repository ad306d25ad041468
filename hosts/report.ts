/**
 * The report of `npm run hosts`: per phase (the baseline, then each host fault) what users saw through the
 * virtual address, from the chaos suite's samples and ledger (acknowledged writes and accepted jobs checked at
 * the end); printed, written to hosts/last-run.md, and put into docs/deploy.md between its markers.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { JobOutcome, LostWrite } from '../chaos/checks.js'
import { failed, type Sample } from '../chaos/client.js'
import type { AcceptedJob } from '../chaos/traffic.js'
import { root } from './deploy.js'
import type { FaultResult } from './faults.js'
import type { StaleRead } from './freshness.js'

export interface Phase {
  name: string
  start: number
  end: number
  result: FaultResult
}

export interface RunFacts {
  phases: Phase[]
  samples: readonly Sample[]
  jobs: readonly AcceptedJob[]
  outcomes: Map<string, JobOutcome>
  lost: LostWrite[]
  /** Reads that answered older than an acknowledged write (freshness.ts). */
  stale: readonly StaleRead[]
  /** Lines about the run (hosts, load, what is left after it). */
  summary: string[]
}

const s = (ms: number | undefined) => (ms === undefined ? 'not within 90 s' : `${(ms / 1000).toFixed(1)} s`)

function row(p: Phase, f: RunFacts): string {
  const inPhase = f.samples.filter((x) => x.start >= p.start && x.start < p.end)
  const bad = inPhase.filter(failed)
  const codes = new Map<string, number>()
  for (const x of bad)
    codes.set(
      `${x.status || ''} ${x.code}`.trim(),
      (codes.get(`${x.status || ''} ${x.code}`.trim()) ?? 0) + 1,
    )
  const jobs = f.jobs.filter((j) => j.at >= p.start && j.at < p.end)
  const reads = bad.filter((x) => x.kind === 'catalog' || x.kind === 'session')
  const cells = [
    p.name,
    inPhase.length,
    `${bad.filter((x) => x.kind === 'catalog').length} / ${reads.length}`,
    bad.length - reads.length,
    [...codes]
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c} x${n}`)
      .join(', ') || '-',
    s(Math.max(0, ...inPhase.map((x) => x.ms))),
    bad.length ? s(Math.max(...bad.map((x) => x.start + x.ms)) - Math.min(...bad.map((x) => x.start))) : '-',
    s(p.result.wholeAt === undefined ? undefined : p.result.wholeAt - p.start),
    f.lost.filter((l) => l.at >= p.start && l.at < p.end).length,
    f.stale.filter((x) => x.at >= p.start && x.at < p.end).length,
    jobs.filter((j) => f.outcomes.get(j.id)?.state !== 'completed').length,
    jobs.filter((j) => (f.outcomes.get(j.id)?.attempts ?? 0) > 1).length,
    jobs.filter((j) => (f.outcomes.get(j.id)?.effects ?? 0) > 1).length,
    p.result.notes.join('; '),
  ]
  return `| ${cells.join(' | ')} |`
}

/** Per phase with failures: the failed requests by route and answer, most first. */
function failures(f: RunFacts): string[] {
  const lines: string[] = []
  for (const p of f.phases) {
    const groups = new Map<string, number>()
    for (const x of f.samples)
      if (x.start >= p.start && x.start < p.end && failed(x)) {
        // A slow failure says how long it took (a request that waited for a silent host).
        const slow = x.ms > 2_000 ? ` after ${(x.ms / 1000).toFixed(1)} s` : ''
        const key = `${x.route} -> ${x.status || 'no answer'} ${x.code}${slow}`
        groups.set(key, (groups.get(key) ?? 0) + 1)
      }
    const sorted = [...groups].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} x${n}`)
    if (sorted.length) lines.push(`- ${p.name}: ${sorted.slice(0, 8).join('; ')}`)
  }
  return lines
}

/** The table of a run. */
export function table(f: RunFacts): string {
  return [
    '| fault | requests | failed reads (catalog / all) | failed writes | failed answers | longest answer | failing for | whole again in | acked writes lost | stale reads | jobs lost | jobs run again | effects twice | notes |',
    `|${' --- |'.repeat(14)}`,
    ...f.phases.map((p) => row(p, f)),
  ].join('\n')
}

/** Prints the report and writes it to hosts/last-run.md and docs/deploy.md (between its hosts-run markers). */
export async function writeReport(f: RunFacts): Promise<void> {
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ')
  const body = [
    `\`npm run hosts\`, ${when} UTC, ${os.cpus().length} cores: ${f.summary[0] ?? ''}`,
    '',
    table(f),
    '',
    ...f.summary.slice(1).map((l) => `${l}  `),
    '',
    ...(failures(f).length
      ? ['Failed requests by fault (route, answer):', '', ...failures(f)]
      : ['No request failed.']),
  ].join('\n')
  console.log(`\n${body}\n`)
  await fs.writeFile(path.join(root, 'hosts', 'last-run.md'), `# Multi-host test bed run\n\n${body}\n`)
  const docs = path.join(root, 'docs', 'deploy.md')
  const text = await fs.readFile(docs, 'utf8').catch(() => '')
  const begin = '<!-- hosts-run:begin (written by npm run hosts) -->'
  const end = '<!-- hosts-run:end -->'
  const i = text.indexOf(begin)
  const j = text.indexOf(end)
  if (i >= 0 && j > i)
    await fs.writeFile(docs, `${text.slice(0, i + begin.length)}\n${body}\n${text.slice(j)}`)
}
