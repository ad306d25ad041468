/**
 * The status of a running stack, as data (what the control socket sends, what `fleet status --json` prints)
 * and as the table the terminal shows: role, name, pid, port, state, restarts, uptime, memory.
 */
import { readFileSync } from 'node:fs'
import type { ChildSnapshot } from './child.js'

/** One process of the stack: a supervised child, or a service (PostgreSQL, Redis) the stack started. */
export interface StatusRow extends ChildSnapshot {
  /** Resident memory in bytes (Linux), when a process runs. */
  rss: number | undefined
}

export interface StatusReport {
  /** Supervisor pid and start time (epoch ms). */
  pid: number
  startedAt: number
  dataDir: string
  /** Where to reach the stack. */
  urls: { app: string; admin?: string; metrics?: string; dashboard?: string }
  /** `starting`, `running` (every child started once), `stopping`. */
  phase: 'starting' | 'running' | 'stopping'
  rows: StatusRow[]
  /**
   * The stores its processes use, once started (the socket is its owner's only): what `fleet migrate`,
   * `seed`, `jobs` and `cache` run in the same folder connect to.
   */
  stores?: { databaseUrl: string; redisUrl: string; cacheRedisUrl: string }
}

const PAGE = 4096

/** Resident memory of `pid` in bytes, from /proc (undefined elsewhere or when the pid is gone). */
export function rssOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1])
    return Number.isFinite(pages) ? pages * PAGE : undefined
  } catch {
    return undefined
  }
}

/** `850ms`, `12s`, `3m04s`, `2h05m`, `3d04h`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))}ms`
  const s = Math.floor(ms / 1_000)
  if (s < 60) return `${s}s`
  const pad = (n: number) => String(n).padStart(2, '0')
  if (s < 3_600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`
  if (s < 86_400) return `${Math.floor(s / 3_600)}h${pad(Math.floor((s % 3_600) / 60))}m`
  return `${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3_600))}h`
}

/** `712 KB`, `48 MB`, `1.2 GB`. */
export function formatBytes(n: number): string {
  if (n < 1024 ** 2) return `${Math.round(n / 1024)} KB`
  if (n < 1024 ** 3) return `${Math.round(n / 1024 ** 2)} MB`
  return `${(n / 1024 ** 3).toFixed(1)} GB`
}

/** The STATE cell: the state, with the wait left in backoff and how the last run ended after a crash. */
export function stateCell(row: ChildSnapshot, now: number): string {
  if (row.state === 'backoff' && row.nextStartAt !== undefined)
    return `backoff ${formatDuration(row.nextStartAt - now)} (${row.lastExit ?? 'exited'})`
  if (row.state === 'crashed') return `crashed (${row.lastExit ?? 'exited'})`
  return row.state
}

const HEADERS = ['ROLE', 'NAME', 'PID', 'PORT', 'STATE', 'RESTARTS', 'UPTIME', 'MEM'] as const

/** The rows as an aligned text table, header first, one line per process, no trailing newline. */
export function renderTable(rows: readonly StatusRow[], now = Date.now()): string {
  const cells = rows.map((r) => [
    r.role,
    r.name,
    r.pid === undefined ? '-' : String(r.pid),
    r.port === undefined ? '-' : String(r.port),
    stateCell(r, now),
    String(r.restarts),
    r.startedAt === undefined ? '-' : formatDuration(now - r.startedAt),
    r.rss === undefined ? '-' : formatBytes(r.rss),
  ])
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)))
  const line = (c: readonly string[]) =>
    c
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd()
  return [line(HEADERS), ...cells.map(line)].join('\n')
}

/** The whole report: the table, then where to reach the stack. */
export function renderReport(report: StatusReport, now = Date.now()): string {
  const head = `fleet up (pid ${report.pid}) ${report.phase}, up ${formatDuration(now - report.startedAt)}, data in ${report.dataDir}`
  const urls = [`  app      ${report.urls.app}`]
  if (report.urls.admin) urls.push(`  lb admin ${report.urls.admin}`)
  if (report.urls.metrics) urls.push(`  metrics  ${report.urls.metrics}`)
  if (report.urls.dashboard) urls.push(`  dashboard ${report.urls.dashboard}`)
  return [head, '', renderTable(report.rows, now), '', ...urls].join('\n')
}
