import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { connectRedis } from '../../src/redis/connect.js'
import { Registry } from '../../src/registry/registry.js'
import { freePort } from '../../src/stack/ports.js'
import { startWebServer } from '../../src/web/main.js'
import { deleteKeys, isolatedEnv } from '../support/context.js'
import { waitFor } from '../support/wait.js'

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('web server lifecycle', () => {
  it('drains on stop: unready and draining in the registry first, in-flight requests finish, then it leaves', async () => {
    const env = isolatedEnv({ FLEET_DRAIN_DELAY: '400ms', FLEET_INSTANCE_ID: 'web-drain' })
    const config = loadConfig({ env })
    const redis = connectRedis(config.redisUrl!)
    cleanups.push(async () => {
      await deleteKeys(redis, `${config.redisPrefix}*`)
      redis.disconnect()
    })
    const registry = new Registry(redis, config.redisPrefix)
    let release: () => void = () => {}
    let arrived: () => void = () => {}
    const inHandler = new Promise<void>((r) => {
      arrived = r
    })
    const server = await startWebServer(config, {
      routes: [
        async (app) => {
          app.get('/slow', async () => {
            await new Promise<void>((r) => {
              release = r
              arrived()
            })
            return { done: true }
          })
        },
      ],
    })
    cleanups.push(async () => {
      release()
      await server.stop()
      await server.deps.db.pool.query(`DROP SCHEMA IF EXISTS ${config.dbSchema} CASCADE`).catch(() => {})
    })
    const [entry] = await registry.list('web')
    expect(entry).toMatchObject({ id: 'web-drain', state: 'ready', url: server.url })

    const inflight = fetch(`${server.url}/slow`)
    await Promise.race([inHandler, inflight]) // the request is in flight: its handler runs
    const stopped = server.stop()
    // During the drain delay: still serving, but unready and marked draining.
    const ready = await fetch(`${server.url}/readyz`)
    expect(ready.status).toBe(503)
    expect((await registry.list('web'))[0].state).toBe('draining')
    release()
    const res = await inflight
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ done: true })
    await stopped
    expect(await registry.list('web')).toEqual([])
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow()
  })

  it('`fleet web` registers itself, serves, and exits 0 on SIGTERM after deregistering', async () => {
    const port = await freePort()
    const env = isolatedEnv({
      FLEET_WEB_PORT: String(port),
      FLEET_DRAIN_DELAY: '100ms',
      FLEET_INSTANCE_ID: 'web-cli',
    })
    const config = loadConfig({ env })
    const redis = connectRedis(config.redisUrl!)
    const registry = new Registry(redis, config.redisPrefix)
    const child = spawn(process.execPath, [CLI, 'web'], { env: { ...process.env, ...env }, stdio: 'pipe' })
    let stderr = ''
    child.stderr.on('data', (c) => {
      stderr += c
    })
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    cleanups.push(async () => {
      child.kill('SIGKILL')
      await deleteKeys(redis, `${config.redisPrefix}*`)
      redis.disconnect()
    })
    const entry = await waitFor('the web server in the registry', async () => (await registry.list('web'))[0])
    expect(entry).toMatchObject({
      id: 'web-cli',
      url: `http://127.0.0.1:${port}`,
      pid: child.pid,
      state: 'ready',
    })
    const res = await fetch(`http://127.0.0.1:${port}/readyz`)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-served-by')).toBe('web-cli')
    child.kill('SIGTERM')
    expect(await exited, stderr).toBe(0)
    expect(await registry.list('web')).toEqual([])
  })

  it('`fleet web` refuses a bad setting with exit code 2 and a message naming it', async () => {
    const child = spawn(process.execPath, [CLI, 'web'], {
      env: { ...process.env, ...isolatedEnv({ FLEET_WEB_PORT: '99999' }) },
      stdio: 'pipe',
    })
    let stderr = ''
    child.stderr.on('data', (c) => {
      stderr += c
    })
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
    expect(code).toBe(2)
    expect(stderr).toContain(
      'FLEET_WEB_PORT="99999" (from environment) is invalid: expected a number from 0 to 65535',
    )
  })
})
