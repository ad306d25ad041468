import { existsSync, statSync } from 'node:fs'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ControlServer, requestRestart, requestStatus } from '../../src/stack/control.js'
import { ControlRequestError, NoSupervisorError, StackRunningError } from '../../src/stack/errors.js'
import type { StatusReport } from '../../src/stack/status.js'
import type { RestartProgress } from '../../src/stack/supervisor.js'

const report: StatusReport = {
  pid: 123,
  startedAt: 1_700_000_000_000,
  dataDir: '/data',
  urls: { app: 'http://localhost:8080' },
  phase: 'running',
  rows: [
    {
      role: 'web',
      name: 'web-1',
      pid: 99,
      port: 8081,
      state: 'ready',
      restarts: 2,
      startedAt: 1_700_000_001_000,
      lastExit: 'signal SIGKILL',
      nextStartAt: undefined,
      rss: 1000,
    },
  ],
}

let dir: string
let servers: ControlServer[] = []
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-ctl-'))
})
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()))
  servers = []
  await fs.rm(dir, { recursive: true, force: true })
})

function serve(restart?: (target: string, onProgress: (p: RestartProgress) => void) => Promise<void>) {
  const server = new ControlServer(path.join(dir, 'fleet.sock'), {
    status: () => report,
    restart: restart ?? (async () => {}),
  })
  servers.push(server)
  return server
}

describe('control socket', () => {
  it('answers GET /status with the report, on a socket only its owner may use', async () => {
    const server = serve()
    await server.listen(dir)
    expect(statSync(server.path).mode & 0o777).toBe(0o600)
    expect(await requestStatus(server.path)).toEqual(report)
  })

  it('streams a rolling restart step by step and ends with its outcome', async () => {
    const targets: string[] = []
    let stoppingSeen: () => void = () => {}
    const clientSawStopping = new Promise<void>((r) => {
      stoppingSeen = r
    })
    const server = serve(async (target, onProgress) => {
      targets.push(target)
      onProgress({ event: 'stopping', name: 'web-1', pid: 1, message: 'web-1: stopping' })
      // The next step only once the client has the first: each step reaches it as it goes, not at the end.
      await clientSawStopping
      onProgress({ event: 'ready', name: 'web-1', pid: 2, ms: 50, message: 'web-1: ready again' })
      onProgress({ event: 'done', ms: 50, message: 'restarted 1' })
    })
    await server.listen(dir)
    const seen: string[] = []
    const last = await requestRestart(server.path, 'web', (p) => {
      seen.push(p.event)
      if (p.event === 'stopping') stoppingSeen()
    })
    expect(targets).toEqual(['web'])
    expect(seen).toEqual(['stopping', 'ready', 'done'])
    expect(last.event).toBe('done')
  })

  it('keeps a restart stream open through long quiet gaps (a server takes seconds to come back)', async () => {
    const server = serve(async (_t, onProgress) => {
      onProgress({ event: 'stopping', name: 'web-1', message: 'web-1: stopping' })
      // fixed wait: a quiet gap longer than Node's 5 s default socket timeouts is what this test is about.
      await new Promise((r) => setTimeout(r, 6_000))
      onProgress({ event: 'done', message: 'restarted 1' })
    })
    await server.listen(dir)
    expect((await requestRestart(server.path, 'web')).event).toBe('done')
  }, 15_000)

  it('turns a refused restart into a ControlRequestError with the reason', async () => {
    const server = serve(async () => {
      throw new ControlRequestError('nothing to restart named "nope"')
    })
    await server.listen(dir)
    const err = await requestRestart(server.path, 'nope').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ControlRequestError)
    expect((err as Error).message).toContain('nothing to restart named "nope"')
  })

  it('reports a restart that failed midway as the last step', async () => {
    const server = serve(async (_t, onProgress) => {
      onProgress({ event: 'stopping', name: 'web-1', message: 'web-1: stopping' })
      onProgress({ event: 'failed', message: 'web-1 did not become ready' })
      throw new Error('web-1 did not become ready')
    })
    await server.listen(dir)
    expect((await requestRestart(server.path, 'web')).event).toBe('failed')
  })

  it('says clearly when no supervisor runs', async () => {
    const sock = path.join(dir, 'fleet.sock')
    await expect(requestStatus(sock)).rejects.toBeInstanceOf(NoSupervisorError)
    await expect(requestStatus(sock)).rejects.toThrow(/no fleet up is running for this data folder/)
  })

  it('replaces a socket left by a dead supervisor, and refuses to start beside a live one', async () => {
    const sock = path.join(dir, 'fleet.sock')
    // A socket file nobody listens on any more (its server closed without removing it).
    const stale = net.createServer()
    await new Promise<void>((r) => stale.listen(sock, () => r()))
    await new Promise<void>((r) => {
      stale.close(() => r())
    })
    await fs.writeFile(sock, '')
    expect(existsSync(sock)).toBe(true)
    await expect(requestStatus(sock)).rejects.toBeInstanceOf(NoSupervisorError)
    const first = serve()
    await first.listen(dir)
    expect((await requestStatus(sock)).pid).toBe(123)
    const second = new ControlServer(sock, { status: () => report, restart: async () => {} })
    await expect(second.listen(dir)).rejects.toBeInstanceOf(StackRunningError)
    expect((await requestStatus(sock)).pid).toBe(123)
  })
})
