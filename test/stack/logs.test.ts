/**
 * Children that write their own log file (FLEET_LOG_FILE), run as `fleet up` runs them: each JSON line lands
 * in the file once, written by the child; the supervisor echoes warnings and appends only what the child did
 * not log itself (a crash's trace); the last lines before any exit are in the file; SIGHUP reopens it.
 * Real processes: a fixture on Fleet's own logger (dist/log.js), and a real `fleet web`.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { createPool } from '../../src/db/pool.js'
import { connectRedis } from '../../src/redis/connect.js'
import type { ChildSpec } from '../../src/stack/child.js'
import { freePort } from '../../src/stack/ports.js'
import { stackChildren } from '../../src/stack/roles.js'
import { Supervisor } from '../../src/stack/supervisor.js'
import { echoLine } from '../../src/stack/view.js'
import { deleteKeys, isolatedEnv } from '../support/context.js'
import { waitUntil } from '../support/wait.js'

const fixture = fileURLToPath(new URL('./fixtures/logging-child.mjs', import.meta.url))
const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

interface Seen {
  line: string
  stream: 'stdout' | 'stderr'
}

let dir: string
let supervisors: Supervisor[] = []
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-logs-'))
})
afterEach(async () => {
  await Promise.all(supervisors.map((s) => s.kill()))
  supervisors = []
  await fs.rm(dir, { recursive: true, force: true })
})

const read = (file: string) => fs.readFile(file, 'utf8').catch(() => '')
const count = (text: string, needle: string) => text.split(needle).length - 1
const messages = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { msg: string }).msg)

/** The fixture as `fleet up` runs a child: its log file in FLEET_LOG_FILE, and what it prints collected. */
async function fixtureChild(backoffMs = 50) {
  const port = await freePort()
  const logFile = path.join(dir, 'web-1.log')
  const seen: Seen[] = []
  const sup = new Supervisor({ stopTimeoutMs: () => 5_000, readyTimeoutMs: 10_000 })
  supervisors.push(sup)
  const spec: ChildSpec = {
    role: 'web',
    name: 'web-1',
    command: process.execPath,
    args: [fixture],
    env: { ...process.env, CHILD_PORT: String(port), FLEET_LOG_FILE: logFile, FLEET_LOG_LEVEL: 'info' },
    port,
    readiness: { kind: 'http', url: `http://127.0.0.1:${port}/readyz` },
    logFile,
    writesOwnLog: true,
    onLine: (_name, line, stream) => seen.push({ line, stream }),
    backoff: { initialMs: backoffMs, maxMs: backoffMs, resetAfterMs: 30_000 },
  }
  const child = sup.add(spec)
  sup.startAll()
  await child.waitReady(10_000)
  const post = async (p: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${p}`, { method: 'POST' })
    await res.arrayBuffer()
  }
  return { sup, child, logFile, seen, post }
}

describe('a child writing its own log file', () => {
  it('has each JSON line once in its file, its warnings echoed, nothing per line on stdout', async () => {
    const { sup, logFile, seen, post } = await fixtureChild()
    await post('/log?n=2000')
    await post('/warn')
    // Buffered, but written within a second even when no more lines come.
    await waitUntil(
      'the warning in the file',
      async () => (await read(logFile)).includes('disk almost full'),
      5_000,
    )
    const text = await read(logFile)
    for (const i of [0, 1, 999, 1999]) expect(count(text, `"msg":"line ${i}"`)).toBe(1)
    expect(messages(text).filter((m) => m.startsWith('line '))).toHaveLength(2000)
    expect(count(text, 'disk almost full')).toBe(1)
    // The warning came on stderr for the terminal: echoed there, and not appended a second time.
    const warn = seen.find((s) => s.line.includes('disk almost full'))
    expect(warn?.stream).toBe('stderr')
    expect(echoLine('web-1', warn?.line ?? '')).toBe('web-1 | WARN disk almost full')
    expect(seen.filter((s) => s.line.includes('"msg":"line '))).toEqual([])
    expect(seen.filter((s) => s.stream === 'stdout')).toEqual([])

    // SIGTERM: the line logged just before process.exit is in the file.
    await post('/log?n=3')
    await sup.stop(['web'])
    const after = messages(await read(logFile))
    expect(after.slice(-4)).toEqual(['line 0', 'line 1', 'line 2', 'stopping'])
  })

  it('gets a crash trace the child wrote on stderr appended, after the lines it logged before the crash', async () => {
    const { child, logFile, seen, post } = await fixtureChild(60_000)
    await post('/log?n=5')
    await post('/crash')
    await waitUntil('the crash', () => child.state === 'backoff')
    // The trace ends with the version line.
    await waitUntil('the whole trace in the file', async () =>
      /Error: fixture crash[\s\S]*\nNode\.js v/.test(await read(logFile)),
    )
    const text = await read(logFile)
    expect(count(text, '"msg":"about to crash"')).toBe(1)
    expect(count(text, 'Error: fixture crash')).toBe(1)
    expect(text).toMatch(/\n\s+at .*logging-child\.mjs/)
    expect(messages(text).slice(-6)).toEqual([
      'line 0',
      'line 1',
      'line 2',
      'line 3',
      'line 4',
      'about to crash',
    ])
    // Echoed to the terminal as before: the trace is not JSON.
    const trace = seen.find((s) => s.line.includes('Error: fixture crash'))
    expect(trace?.stream).toBe('stderr')
    expect(echoLine('web-1', trace?.line ?? '')).toBe(`web-1 | ${trace?.line}`)
  })

  it('keeps its last lines when it exits on its own, and reopens its file on SIGHUP', async () => {
    const { child, logFile, post } = await fixtureChild(60_000)
    await post('/log?n=2')
    await waitUntil('line 1 in the file', async () => (await read(logFile)).includes('"msg":"line 1"'), 5_000)
    // Rotation: the file is moved away, SIGHUP, and the next lines go to a new file of the same name.
    await fs.rename(logFile, `${logFile}.1`)
    process.kill(child.pid as number, 'SIGHUP')
    await waitUntil('a new file', () => fs.access(logFile).then(() => true))
    await post('/log?n=1')
    await post('/end')
    await waitUntil('the exit', () => child.state === 'backoff')
    expect(messages(await read(`${logFile}.1`))).toEqual(['line 0', 'line 1'])
    expect(messages(await read(logFile))).toEqual(['line 0', 'ending'])
  })
})

describe('fleet web under the supervisor', () => {
  it('writes one access line per request to its file itself, none through stdout, and its last line on SIGTERM', async () => {
    const env = isolatedEnv({ FLEET_LOG_LEVEL: 'info', FLEET_ACCESS_LOG: 'all', FLEET_DRAIN_DELAY: '100ms' })
    const config = loadConfig({ env })
    const redis = connectRedis(config.redisUrl as string)
    const pool = createPool(config)
    try {
      const port = await freePort()
      const seen: Seen[] = []
      const sup = new Supervisor({ stopTimeoutMs: () => 15_000, readyTimeoutMs: 60_000 })
      supervisors.push(sup)
      const [web] = stackChildren({
        env: { ...process.env, ...env },
        lbPort: await freePort(),
        lbProbeHost: '127.0.0.1',
        adminPort: await freePort(),
        webPorts: [port],
        workerPorts: [],
        logFile: (name) => path.join(dir, `${name}.log`),
        backoff: { initialMs: 60_000, maxMs: 60_000, resetAfterMs: 30_000 },
        onLine: (_name, line, stream) => seen.push({ line, stream }),
      })
      expect(web.env.FLEET_LOG_FILE).toBe(path.join(dir, 'web-1.log'))
      // The built CLI (roles.ts, loaded here from src/, points at a src/cli.js that does not exist).
      const child = sup.add({ ...web, args: [cli, 'web'] })
      child.start()
      await child.waitReady(60_000)
      const ids: string[] = []
      for (let i = 0; i < 50; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/api/categories`)
        await res.arrayBuffer()
        expect(res.status).toBe(200)
        ids.push(res.headers.get('x-request-id') as string)
      }
      await sup.stop(['web'])
      const text = await read(path.join(dir, 'web-1.log'))
      for (const id of ids) expect(count(text, `"reqId":"${id}"`)).toBe(1)
      expect(seen.filter((s) => s.line.includes('"reqId"'))).toEqual([])
      expect(seen.filter((s) => s.stream === 'stdout')).toEqual([])
      expect(messages(text).at(-1)).toBe('web server stopped')
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS ${config.dbSchema} CASCADE`).catch(() => {})
      await pool.end()
      await deleteKeys(redis, `${config.redisPrefix}*`)
      redis.disconnect()
    }
  })
})
