import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { lbRoutesTo, lbRoutesToAny } from '../../src/stack/settle.js'
import {
  formatBytes,
  formatDuration,
  renderReport,
  renderTable,
  type StatusRow,
} from '../../src/stack/status.js'
import { echoLine, StatusView } from '../../src/stack/view.js'

const now = Date.UTC(2026, 0, 1, 12, 0, 0)

function row(over: Partial<StatusRow>): StatusRow {
  return {
    role: 'web',
    name: 'web-1',
    pid: 4242,
    port: 8081,
    state: 'ready',
    restarts: 0,
    startedAt: now - 75_000,
    lastExit: undefined,
    nextStartAt: undefined,
    rss: 52 * 1024 * 1024,
    ...over,
  }
}

describe('status formatting', () => {
  it('writes durations and sizes the way an operator reads them', () => {
    expect(formatDuration(850)).toBe('850ms')
    expect(formatDuration(12_400)).toBe('12s')
    expect(formatDuration(184_000)).toBe('3m04s')
    expect(formatDuration(2 * 3_600_000 + 5 * 60_000)).toBe('2h05m')
    expect(formatDuration(3 * 86_400_000 + 4 * 3_600_000)).toBe('3d04h')
    expect(formatBytes(712 * 1024)).toBe('712 KB')
    expect(formatBytes(48 * 1024 * 1024)).toBe('48 MB')
    expect(formatBytes(1.25 * 1024 ** 3)).toBe('1.3 GB')
  })

  it('renders an aligned table: role, name, pid, port, state, restarts, uptime, memory', () => {
    const text = renderTable(
      [
        row({}),
        row({
          name: 'web-2',
          pid: undefined,
          state: 'backoff',
          restarts: 3,
          startedAt: undefined,
          rss: undefined,
          lastExit: 'signal SIGKILL',
          nextStartAt: now + 2_000,
        }),
        row({ role: 'worker', name: 'worker-1', port: undefined, pid: 77 }),
      ],
      now,
    )
    const lines = text.split('\n')
    expect(lines[0]).toMatch(/^ROLE\s+NAME\s+PID\s+PORT\s+STATE\s+RESTARTS\s+UPTIME\s+MEM$/)
    expect(lines[1]).toMatch(/^web\s+web-1\s+4242\s+8081\s+ready\s+0\s+1m15s\s+52 MB$/)
    expect(lines[2]).toMatch(/^web\s+web-2\s+-\s+8081\s+backoff 2s \(signal SIGKILL\)\s+3\s+-\s+-$/)
    expect(lines[3]).toMatch(/^worker\s+worker-1\s+77\s+-\s+ready\s+0\s+1m15s\s+52 MB$/)
    // Columns line up: every line has the STATE column at the same offset.
    const at = lines[0].indexOf('STATE')
    expect(lines[1].slice(at, at + 5)).toBe('ready')
    expect(lines[2].slice(at, at + 7)).toBe('backoff')
  })

  it('renders the whole report with where to reach the stack', () => {
    const text = renderReport(
      {
        pid: 1,
        startedAt: now - 5_000,
        dataDir: '/srv/fleet/data',
        urls: { app: 'http://localhost:8080', admin: 'http://127.0.0.1:9090/status' },
        phase: 'running',
        rows: [row({})],
      },
      now,
    )
    expect(text).toContain('fleet up (pid 1) running, up 5s, data in /srv/fleet/data')
    expect(text).toContain('app      http://localhost:8080')
    expect(text).toContain('lb admin http://127.0.0.1:9090/status')
  })
})

describe('echoLine', () => {
  it('shows warnings, errors and non-JSON lines of a child, and keeps info lines in its log file only', () => {
    expect(echoLine('web-1', JSON.stringify({ level: 30, msg: 'listening' }))).toBeUndefined()
    expect(
      echoLine('web-1', JSON.stringify({ level: 50, msg: 'query failed', err: { message: 'boom' } })),
    ).toBe('web-1 | ERROR query failed: boom')
    expect(echoLine('web-1', JSON.stringify({ level: 40, msg: 'slow' }))).toBe('web-1 | WARN slow')
    expect(echoLine('web-1', 'TypeError: x is not a function')).toBe('web-1 | TypeError: x is not a function')
    expect(echoLine('web-1', '{not json')).toBe('web-1 | {not json')
  })

  it("shows each of Node's warnings once for the whole stack", () => {
    const seen = new Set<string>()
    const warn = (pid: number) =>
      `(node:${pid}) [FSTDEP024] FastifyDeprecation: requestIdLogLabel is deprecated.`
    expect(echoLine('web-1', warn(11), seen)).toBe(`web-1 | ${warn(11)}`)
    expect(echoLine('web-2', warn(12), seen)).toBeUndefined()
    expect(echoLine('web-1', '(Use `node --trace-warnings ...` to show where)', seen)).toBeDefined()
    expect(echoLine('web-2', '(Use `node --trace-warnings ...` to show where)', seen)).toBeUndefined()
    expect(echoLine('web-2', 'Error: boom', seen)).toBe('web-2 | Error: boom')
    expect(echoLine('web-2', 'Error: boom', seen)).toBe('web-2 | Error: boom')
  })
})

describe('lbRoutesTo', () => {
  const status = (u: Record<string, unknown>) => ({
    upstreams: [{ url: 'http://127.0.0.1:9001', eligible: true }, u],
  })
  it('is true only when the LB lists the port as eligible and not draining', () => {
    expect(lbRoutesTo(status({ url: 'http://127.0.0.1:8082', eligible: true, healthy: true }), 8082)).toBe(
      true,
    )
    expect(lbRoutesTo(status({ url: 'http://127.0.0.1:8082', eligible: false, healthy: true }), 8082)).toBe(
      false,
    )
    expect(lbRoutesTo(status({ url: 'http://127.0.0.1:8082', eligible: true, draining: true }), 8082)).toBe(
      false,
    )
    expect(lbRoutesTo(status({ url: 'http://127.0.0.1:8082', eligible: true }), 808)).toBe(false)
    expect(lbRoutesTo({ backends: [{ address: '127.0.0.1:8082', state: 'UP' }] }, 8082)).toBe(true)
    expect(lbRoutesTo(undefined, 8082)).toBe(false)
  })

  it('lbRoutesToAny: true once one upstream is eligible', () => {
    expect(lbRoutesToAny({ upstreams: [{ url: 'http://127.0.0.1:1', eligible: false }] })).toBe(false)
    expect(lbRoutesToAny({ upstreams: [] })).toBe(false)
    expect(lbRoutesToAny(undefined)).toBe(false)
    expect(lbRoutesToAny(status({ url: 'http://127.0.0.1:8082', eligible: false }))).toBe(true)
  })
})

/** A stream that keeps what is written, standing in for a terminal (live) or a file (not live). */
function sink(): { out: NodeJS.WriteStream; text: () => string } {
  let text = ''
  const out = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk)
      cb()
    },
  }) as unknown as NodeJS.WriteStream
  return { out, text: () => text }
}

describe('StatusView', () => {
  const report = () => ({
    pid: 1,
    startedAt: Date.now(),
    dataDir: '/d',
    urls: { app: 'http://localhost:8080' },
    phase: 'running' as const,
    rows: [row({})],
  })

  it('prints one plain line per state change when the output is not a terminal', () => {
    const { out, text } = sink()
    const view = new StatusView(out, report, false)
    view.start()
    view.stateChanged(row({ state: 'ready' }), 'starting')
    view.message('hello')
    expect(text()).toMatch(/^\d\d:\d\d:\d\d web-1 starting -> ready pid 4242 port 8081\nhello\n$/)
    expect(text()).not.toContain('\x1b[')
  })

  it('on a terminal, redraws the table in place and prints messages above it', () => {
    const { out, text } = sink()
    const view = new StatusView(out, report, true)
    view.start()
    const table = text()
    expect(table).toContain('ROLE')
    const lines = table.split('\n').length - 1
    view.message('web-2 | ERROR boom')
    const after = text().slice(table.length)
    expect(after.startsWith(`\x1b[${lines}A\r\x1b[J`)).toBe(true)
    expect(after).toContain('web-2 | ERROR boom\n')
    expect(after.split('ROLE').length - 1).toBe(1)
    view.stop()
    const stopped = text().length
    view.message('bye')
    expect(text().slice(stopped)).toBe('bye\n')
  })
})
