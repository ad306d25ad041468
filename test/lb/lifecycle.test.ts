/** Graceful close (in-flight requests finish, new ones are refused) and the `fleet lb` command. */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import type { LoadBalancer } from '../../src/lb/index.js'
import { type Backend, get, startBackend, startLb, until } from './helpers.js'

describe('load balancer: lifecycle', () => {
  const backends: Backend[] = []
  let lb: LoadBalancer | undefined

  afterEach(async () => {
    await lb?.close()
    lb = undefined
    await Promise.all(backends.splice(0).map((b) => b.close()))
  })

  it('close() lets in-flight requests finish and stops taking new connections', async () => {
    const b = await startBackend('slow', (req, res) => {
      req.resume()
      setTimeout(() => res.end('finished'), 300)
    })
    backends.push(b)
    lb = await startLb({ upstreams: [b.url], shutdownTimeoutMs: 5000 })
    const port = lb.port
    const inflight = get(port, '/')
    await until(() => b.hits === 1, 2000, 'request upstream')
    const closing = lb.close()
    const r = await inflight
    expect(r).toMatchObject({ status: 200, body: 'finished' })
    await closing
    lb = undefined
    await expect(get(port, '/')).rejects.toThrow(/ECONNREFUSED/)
  })

  it('close() cuts requests that outlive the shutdown timeout', async () => {
    const b = await startBackend('never', (req) => {
      req.resume()
    })
    backends.push(b)
    lb = await startLb({ upstreams: [b.url], shutdownTimeoutMs: 200 })
    const inflight = get(lb.port, '/').catch((err: Error) => err)
    await until(() => b.hits === 1, 2000, 'request upstream')
    const t0 = Date.now()
    await lb.close()
    lb = undefined
    expect(Date.now() - t0).toBeLessThan(3000)
    expect(await inflight).toBeInstanceOf(Error)
  })

  it('`fleet lb --upstream` runs until SIGTERM, then exits cleanly', async () => {
    const b = await startBackend('a')
    backends.push(b)
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'lb', '--port', '0', '--admin-port', '0', '--upstream', b.url],
      {
        cwd: new URL('../..', import.meta.url),
        env: { ...process.env, FLEET_LOG_LEVEL: 'warn' },
        stdio: 'pipe',
      },
    )
    try {
      let out = ''
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
      })
      child.stderr.on('data', (d: Buffer) => {
        out += d.toString()
      })
      await until(
        () => /listening on http:\/\/127\.0\.0\.1:\d+/.test(out),
        20_000,
        `fleet lb to start: ${out}`,
      )
      const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1])
      const r = await get(port, '/via-cli')
      expect(JSON.parse(r.body)).toMatchObject({ backend: 'a', url: '/via-cli' })
      child.kill('SIGTERM')
      const [code] = (await once(child, 'exit')) as [number | null]
      expect(code).toBe(0)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })

  it('the light entry (dist/cli/lb-main.js) refuses a bad option with a message naming it', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/lb-main.ts', '--upstream', 'ftp://x', '--port', '0'],
      {
        cwd: new URL('../..', import.meta.url),
        env: { ...process.env, FLEET_LOG_LEVEL: 'warn' },
        stdio: 'pipe',
      },
    )
    let err = ''
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString()
    })
    const [code] = (await once(child, 'exit')) as [number | null]
    expect(code).toBe(2)
    expect(err).toContain('FLEET_LB_UPSTREAMS')
  })

  it('the light entry exits 2 on a missing setting, as `fleet` does (one exitCodeOf for both)', async () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'REDIS_URL'))
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/lb-main.ts', '--port', '0'], {
      cwd: new URL('../..', import.meta.url),
      env: { ...env, FLEET_LOG_LEVEL: 'warn', FLEET_LB_UPSTREAMS: '' },
      stdio: 'pipe',
    })
    let err = ''
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString()
    })
    const [code] = (await once(child, 'exit')) as [number | null]
    expect(err).toContain('[FLEET_E_CONFIG_MISSING]')
    expect(err).not.toMatch(/\n\s+at /)
    expect(code).toBe(2)
  })
})
