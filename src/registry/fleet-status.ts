/**
 * The whole fleet as the registry knows it (`fleet status --fleet`): every load balancer, web server and
 * worker that announces itself in the store Redis, on any host, with or without `fleet up`: where it is, its
 * state, its health asked now over HTTP (a web server's and a worker's /readyz, an LB's admin /status), how
 * long it has run and how fresh its entry is.
 */
import type { Redis } from 'ioredis'
import { type InstanceRole, Registry, type RegistryEntry } from './registry.js'

export interface FleetRow {
  role: InstanceRole
  id: string
  host: string
  pid: number
  /** Where it serves (an LB's public port, a web server, a worker's health port). */
  url: string | undefined
  /** An LB's admin port. */
  adminUrl: string | undefined
  /** As announced: starting, ready, draining. */
  state: RegistryEntry['state']
  /** Asked now: `ok` (200), `unready` (another status), `unreachable` (no answer in time), `-` (no URL). */
  health: 'ok' | 'unready' | 'unreachable' | '-'
  /** The status or error behind `health`. */
  healthDetail: string | undefined
  /** Since the process started (its own clock). */
  ageMs: number
  /** Until the entry expires without another heartbeat (the registry's clock). */
  expiresInMs: number
}

export interface FleetReport {
  /** Epoch ms (the registry's clock) of the reading. */
  at: number
  rows: FleetRow[]
}

const ROLES: readonly InstanceRole[] = ['lb', 'web', 'worker']

/**
 * Reads every live entry of the registry under `prefix` and asks each process for its health (at most
 * `timeoutMs` each, all at once).
 */
export async function readFleet(redis: Redis, prefix: string, timeoutMs = 1_000): Promise<FleetReport> {
  const registry = new Registry(redis, prefix)
  const [lists, [seconds, micros]] = await Promise.all([
    Promise.all(ROLES.map((role) => registry.list(role))),
    redis.time(),
  ])
  const at = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
  const now = Date.now()
  const rows = await Promise.all(
    lists.flat().map(async (e): Promise<FleetRow> => {
      const probe = e.role === 'lb' ? e.adminUrl && `${e.adminUrl}/status` : e.url && `${e.url}/readyz`
      const { health, detail } = probe
        ? await ask(probe, timeoutMs)
        : { health: '-' as const, detail: undefined }
      return {
        role: e.role,
        id: e.id,
        host: e.host,
        pid: e.pid,
        url: e.url,
        adminUrl: e.adminUrl,
        state: e.state,
        health,
        healthDetail: detail,
        ageMs: Math.max(0, now - e.startedAt),
        expiresInMs: Math.max(0, e.expiresAt - at),
      }
    }),
  )
  return { at, rows }
}

async function ask(url: string, timeoutMs: number): Promise<{ health: FleetRow['health']; detail: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    await res.body?.cancel()
    return { health: res.status === 200 ? 'ok' : 'unready', detail: `HTTP ${res.status}` }
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } }
    return {
      health: 'unreachable',
      detail: e.cause?.code ?? (e.name === 'TimeoutError' ? `no answer in ${timeoutMs} ms` : e.message),
    }
  }
}

/** `850ms`, `12s`, `3m04s`, `2h05m`, `3d04h`. */
function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`
  const s = Math.floor(ms / 1_000)
  const pad = (n: number) => String(n).padStart(2, '0')
  if (s < 60) return `${s}s`
  if (s < 3_600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`
  if (s < 86_400) return `${Math.floor(s / 3_600)}h${pad(Math.floor((s % 3_600) / 60))}m`
  return `${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3_600))}h`
}

/** The report as the terminal shows it: one line per process, LBs first, then a count per role. */
export function renderFleet(report: FleetReport): string {
  const head = ['ROLE', 'NAME', 'HOST', 'PID', 'ADDRESS', 'STATE', 'HEALTH', 'AGE', 'EXPIRES IN']
  const lines = report.rows.map((r) => [
    r.role,
    r.id,
    r.host,
    String(r.pid),
    r.role === 'lb' ? `${r.url ?? '-'} (admin ${r.adminUrl ?? '-'})` : (r.url ?? '-'),
    r.state,
    r.health === 'ok' || r.health === '-' ? r.health : `${r.health} (${r.healthDetail})`,
    duration(r.ageMs),
    duration(r.expiresInMs),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)))
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd()
  const count = (role: InstanceRole) => report.rows.filter((r) => r.role === role).length
  const summary = `${count('lb')} load balancer(s), ${count('web')} web server(s), ${count('worker')} worker(s) in the registry`
  return [fmt(head), ...lines.map(fmt), '', summary].join('\n')
}
