import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { Backoff } from '../../src/stack/backoff.js'
import type { ChildSnapshot, ChildSpec, ChildState } from '../../src/stack/child.js'
import { ChildNotReadyError, ControlRequestError } from '../../src/stack/errors.js'
import { freePort } from '../../src/stack/ports.js'
import { httpOk } from '../../src/stack/probe.js'
import { Supervisor } from '../../src/stack/supervisor.js'
import { waitUntil } from '../support/wait.js'

const script = fileURLToPath(new URL('./fixtures/child.mjs', import.meta.url))
const fast = { initialMs: 50, maxMs: 200, resetAfterMs: 30_000 }

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

let supervisors: Supervisor[] = []
afterEach(async () => {
  await Promise.all(supervisors.map((s) => s.kill()))
  supervisors = []
})

function make(
  onState?: (s: ChildSnapshot, p: ChildState) => void,
  settle?: (s: ChildSnapshot) => Promise<string | undefined>,
) {
  const sup = new Supervisor({ stopTimeoutMs: () => 2_000, readyTimeoutMs: 10_000, onState, settle })
  supervisors.push(sup)
  return sup
}

async function spec(
  name: string,
  env: Record<string, string> = {},
  extra: Partial<ChildSpec> = {},
): Promise<ChildSpec> {
  const port = await freePort()
  return {
    role: name.replace(/-\d+$/, ''),
    name,
    command: process.execPath,
    args: [script],
    env: { ...process.env, CHILD_PORT: String(port), ...env },
    port,
    readiness: { kind: 'http', url: `http://127.0.0.1:${port}/readyz` },
    backoff: fast,
    ...extra,
  }
}

describe('Backoff', () => {
  it('doubles from the initial wait up to the cap, and resets after a long enough run', () => {
    const b = new Backoff({ initialMs: 250, maxMs: 1_000, resetAfterMs: 30_000 })
    expect([b.next(10), b.next(10), b.next(10), b.next(10)]).toEqual([250, 500, 1_000, 1_000])
    expect(b.next(30_000)).toBe(250)
    expect(b.next(5)).toBe(500)
  })
})

describe('Supervisor', () => {
  it('starts a child, waits until its readiness probe answers, and stops it with SIGTERM', async () => {
    const states: ChildState[] = []
    const sup = make((s) => states.push(s.state))
    const child = sup.add(await spec('web-1', { CHILD_READY_MS: '300', CHILD_TERM_MS: '100' }))
    sup.startAll()
    expect(child.state).toBe('starting')
    await child.waitReady(10_000)
    const snap = child.snapshot()
    expect(snap.pid).toBeGreaterThan(0)
    expect(snap.startedAt).toBeLessThanOrEqual(Date.now())
    expect(await httpOk(`http://127.0.0.1:${snap.port}/readyz`)).toBe(true)
    await sup.stop(['web'])
    expect(alive(snap.pid)).toBe(false)
    expect(states).toEqual(['starting', 'ready', 'stopping', 'stopped'])
    expect(child.snapshot().restarts).toBe(0)
  })

  it('restarts a crashing child with a growing backoff, counting restarts', async () => {
    const seen: ChildSnapshot[] = []
    const sup = make((s) => seen.push(s))
    const child = sup.add(await spec('worker-1', { CHILD_EXIT_AFTER_MS: '100' }))
    sup.startAll()
    await waitUntil('three restarts', () => child.snapshot().restarts >= 3)
    const waits = seen
      .filter((s) => s.state === 'backoff')
      .map((s) => s.nextStartAt ?? 0)
      .slice(0, 3)
    expect(waits).toHaveLength(3)
    expect(seen.filter((s) => s.state === 'crashed')[0].lastExit).toBe('exit code 3')
    const pids = new Set(seen.filter((s) => s.state === 'starting').map((s) => s.pid))
    expect(pids.size).toBeGreaterThanOrEqual(4)
    await sup.stop([])
    expect(child.state).toBe('stopped')
  })

  it('brings back a child killed with SIGKILL and reports how it ended', async () => {
    const sup = make()
    const child = sup.add(await spec('web-1'))
    sup.startAll()
    await child.waitReady(10_000)
    const first = child.pid
    process.kill(first as number, 'SIGKILL')
    await waitUntil('the child back, ready', () => child.state === 'ready' && child.pid !== first)
    expect(child.snapshot()).toMatchObject({ restarts: 1, lastExit: 'signal SIGKILL', state: 'ready' })
  })

  it('sends SIGKILL to a child that ignores SIGTERM past its stop timeout', async () => {
    const sup = new Supervisor({ stopTimeoutMs: () => 300, readyTimeoutMs: 10_000 })
    supervisors.push(sup)
    const child = sup.add(await spec('web-1', { CHILD_IGNORE_TERM: '1' }))
    sup.startAll()
    await child.waitReady(10_000)
    const pid = child.pid
    const t0 = Date.now()
    await sup.stop(['web'])
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250)
    expect(alive(pid)).toBe(false)
    expect(child.state).toBe('stopped')
  })

  it('stops roles in the order given, each role fully before the next', async () => {
    const stopping: string[] = []
    const stopped: string[] = []
    const sup = make((s) => {
      if (s.state === 'stopping') stopping.push(s.name)
      if (s.state === 'stopped') stopped.push(s.name)
    })
    sup.add(await spec('worker-1'))
    sup.add(await spec('web-1', { CHILD_TERM_MS: '150' }))
    sup.add(await spec('web-2', { CHILD_TERM_MS: '150' }))
    sup.add(await spec('lb-1'))
    sup.startAll()
    expect(await sup.waitAllReady(10_000)).toEqual([])
    await sup.stop(['lb', 'web', 'worker'])
    expect(stopping[0]).toBe('lb-1')
    expect(stopping.slice(1, 3).sort()).toEqual(['web-1', 'web-2'])
    expect(stopping[3]).toBe('worker-1')
    expect(stopped.indexOf('web-1')).toBeLessThan(stopping.indexOf('worker-1'))
    expect(stopped.indexOf('web-2')).toBeLessThan(stopping.indexOf('worker-1'))
  })

  it('restarts a role one child at a time, each ready again before the next stops', async () => {
    const sup = make(undefined, async () => 'settled')
    const children = [
      sup.add(await spec('web-1', { CHILD_READY_MS: '200', CHILD_TERM_MS: '100' })),
      sup.add(await spec('web-2', { CHILD_READY_MS: '200', CHILD_TERM_MS: '100' })),
      sup.add(await spec('web-3', { CHILD_READY_MS: '200', CHILD_TERM_MS: '100' })),
    ]
    sup.add(await spec('worker-1'))
    sup.startAll()
    expect(await sup.waitAllReady(10_000)).toEqual([])
    const before = children.map((c) => c.pid)
    const workerPid = sup.select('worker')[0].pid
    let minReady = children.length
    const sampler = setInterval(() => {
      minReady = Math.min(minReady, children.filter((c) => c.state === 'ready').length)
    }, 10)
    const progress: string[] = []
    await sup.restart('web', (p) => progress.push(`${p.event} ${p.name ?? ''}`.trim()))
    clearInterval(sampler)
    expect(progress).toEqual([
      'stopping web-1',
      'ready web-1',
      'stopping web-2',
      'ready web-2',
      'stopping web-3',
      'ready web-3',
      'done',
    ])
    expect(minReady).toBe(2)
    for (const [i, c] of children.entries()) {
      expect(c.state).toBe('ready')
      expect(c.pid).not.toBe(before[i])
      expect(alive(before[i])).toBe(false)
      expect(c.snapshot().restarts).toBe(0)
    }
    expect(sup.select('worker')[0].pid).toBe(workerPid)
  })

  it('refuses an unknown restart target and a second restart while one runs', async () => {
    const sup = make()
    sup.add(await spec('web-1', { CHILD_TERM_MS: '300' }))
    sup.startAll()
    await sup.waitAllReady(10_000)
    await expect(sup.restart('nope')).rejects.toBeInstanceOf(ControlRequestError)
    const first = sup.restart('web-1')
    await expect(sup.restart('web')).rejects.toThrow(/already running/)
    await first
    expect(sup.children[0].state).toBe('ready')
  })

  it('fails a restart whose child crashes instead of becoming ready', async () => {
    const sup = make()
    const child = sup.add(await spec('web-1', { CHILD_READY_MS: '60000', CHILD_EXIT_AFTER_MS: '400' }))
    sup.startAll()
    const failed: string[] = []
    await expect(
      sup.restart('web', (p) => {
        if (p.event === 'failed') failed.push(p.message)
      }),
    ).rejects.toBeInstanceOf(ChildNotReadyError)
    expect(failed[0]).toMatch(/web-1 did not become ready: it exited \(exit code 3\)/)
    expect(child.state).not.toBe('ready')
  })

  it('writes every line a child prints to its log file and hands each to onLine', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-sup-'))
    try {
      const lines: string[] = []
      const sup = make()
      const logFile = path.join(dir, 'web-1.log')
      const child = sup.add(
        await spec('web-1', {}, { logFile, onLine: (name, line) => lines.push(`${name}:${line}`) }),
      )
      sup.startAll()
      await child.waitReady(10_000)
      await waitUntil('two lines from the child', () => lines.length >= 2)
      await sup.stop(['web'])
      expect(lines).toContain('web-1:a plain line on stderr')
      const text = await fs.readFile(logFile, 'utf8')
      expect(text).toContain('"msg":"child started"')
      expect(text).toContain('a plain line on stderr')
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })
})
