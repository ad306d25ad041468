/**
 * The address a web server or worker publishes in the registry (issue 20: `FLEET_WEB_HOST=0.0.0.0` used to
 * publish `http://<hostname>:port`, which on a host whose name resolves to 127.0.0.1 no LB could reach):
 * right by default for a wildcard listener (the first non-loopback address of the machine, logged), or
 * refused with FLEET_E_REGISTRY_ADVERTISE_ADDRESS before anything opens.
 */
import { execFile } from 'node:child_process'
import { lookup } from 'node:dns/promises'
import os from 'node:os'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/index.js'
import { startWorker } from '../../src/jobs/worker-process.js'
import { connectRedis } from '../../src/redis/connect.js'
import {
  advertisedUrl,
  firstExternalAddress,
  type Interfaces,
  isWildcard,
} from '../../src/registry/advertise.js'
import { AdvertiseAddressError } from '../../src/registry/errors.js'
import { Registry } from '../../src/registry/registry.js'
import { startWebServer } from '../../src/web/main.js'
import { deleteKeys, isolatedEnv } from '../support/context.js'

const run = promisify(execFile)
const WEB = { host: 'FLEET_WEB_HOST', advertise: 'FLEET_WEB_ADVERTISE_URL' }
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const nic = (address: string, family: 'IPv4' | 'IPv6', internal = false) =>
  ({ address, family, internal, netmask: '', mac: '', cidr: null }) as os.NetworkInterfaceInfo

describe('the advertised address', () => {
  it('for a wildcard listener: the first non-loopback IPv4 of the interfaces, else a global IPv6, else none', () => {
    expect(['0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0', ''].every(isWildcard)).toBe(true)
    expect(['127.0.0.1', '10.0.0.1', '::1', 'myhost'].some(isWildcard)).toBe(false)
    const interfaces = {
      lo: [nic('127.0.0.1', 'IPv4', true), nic('::1', 'IPv6', true)],
      eth0: [nic('fe80::1', 'IPv6'), nic('2001:db8::5', 'IPv6')],
      eth1: [nic('10.1.2.3', 'IPv4'), nic('10.9.9.9', 'IPv4')],
    }
    expect(firstExternalAddress(interfaces)).toEqual({ address: '10.1.2.3', family: 4, name: 'eth1' })
    expect(firstExternalAddress({ ...interfaces, eth1: [] })).toEqual({
      address: '2001:db8::5',
      family: 6,
      name: 'eth0',
    })
    expect(firstExternalAddress({ lo: interfaces.lo, eth0: [nic('fe80::1', 'IPv6')] })).toBeUndefined()
  })

  it('is what was set or listened on, and refuses what no other machine reaches', async () => {
    const at = (host: string, advertiseUrl?: string, interfaces?: Interfaces) =>
      advertisedUrl({ host, port: 8080, advertiseUrl, settings: WEB, interfaces })
    const eth = { eth0: [nic('192.0.2.7', 'IPv4')] }
    expect(await at('0.0.0.0', undefined, eth)).toEqual({
      url: 'http://192.0.2.7:8080',
      source: 'interface',
      interface: 'eth0',
    })
    expect((await at('::', undefined, { eth0: [nic('2001:db8::7', 'IPv6')] })).url).toBe(
      'http://[2001:db8::7]:8080',
    )
    expect(await at('127.0.0.2')).toEqual({ url: 'http://127.0.0.2:8080', source: 'listener' })
    expect(await at('0.0.0.0', 'http://192.0.2.50:80')).toEqual({
      url: 'http://192.0.2.50:80',
      source: 'set',
    })
    // Loopback to loopback is fine: one machine.
    expect((await at('127.0.0.1', 'http://localhost:8080')).url).toBe('http://localhost:8080')
    for (const [host, url, interfaces] of [
      ['0.0.0.0', 'http://127.0.0.1:8080', eth],
      ['0.0.0.0', 'http://localhost:8080', eth],
      ['::', 'http://[::1]:8080', eth],
      ['192.0.2.7', 'http://127.0.0.5:8080', eth],
      ['0.0.0.0', undefined, { lo: [nic('127.0.0.1', 'IPv4', true)] }],
    ] as [string, string | undefined, Interfaces][]) {
      const err = await at(host, url, interfaces).catch((e: unknown) => e)
      expect(err, `${host} ${url}`).toBeInstanceOf(AdvertiseAddressError)
      expect((err as AdvertiseAddressError).code).toBe('FLEET_E_REGISTRY_ADVERTISE_ADDRESS')
      expect((err as Error).message).toContain(
        url ? 'FLEET_WEB_ADVERTISE_URL=' : 'set FLEET_WEB_ADVERTISE_URL',
      )
    }
  })

  it("refuses this machine's own name when it resolves to loopback (as Debian's 127.0.1.1 does)", async () => {
    const name = os.hostname()
    const addresses = await lookup(name, { all: true }).catch(() => [])
    const loopbackOnly = addresses.length > 0 && addresses.every((a) => /^127\.|^::1$/.test(a.address))
    const got = advertisedUrl({
      host: '0.0.0.0',
      port: 8080,
      advertiseUrl: `http://${name}:8080`,
      settings: WEB,
    })
    if (loopbackOnly) await expect(got).rejects.toBeInstanceOf(AdvertiseAddressError)
    else await expect(got).resolves.toMatchObject({ url: `http://${name}:8080`, source: 'set' })
  })

  it('a web server and a worker on 0.0.0.0 publish an address that answers, and say which', async () => {
    const external = firstExternalAddress(os.networkInterfaces())
    const env = isolatedEnv({
      FLEET_WEB_HOST: '0.0.0.0',
      FLEET_WORKER_HOST: '0.0.0.0',
      FLEET_REGISTRY_HEARTBEAT: '200ms',
      FLEET_DRAIN_DELAY: '0ms',
    })
    const config = loadConfig({ env })
    const redis = connectRedis(config.redisUrl!)
    cleanups.push(async () => {
      await deleteKeys(redis, `${config.redisPrefix}*`)
      redis.disconnect()
    })
    if (!external) {
      // A machine with loopback only: refused, not published wrong.
      await expect(startWebServer(config)).rejects.toBeInstanceOf(AdvertiseAddressError)
      return
    }
    const registry = new Registry(redis, config.redisPrefix)
    const web = await startWebServer(config)
    cleanups.push(async () => {
      await web.stop()
      await web.deps.db.pool.query(`DROP SCHEMA IF EXISTS ${config.dbSchema} CASCADE`).catch(() => {})
    })
    const worker = await startWorker(config, [])
    cleanups.push(() => worker.stop())
    const [webEntry] = await registry.list('web')
    const [workerEntry] = await registry.list('worker')
    for (const entry of [webEntry, workerEntry]) {
      const url = new URL(entry?.url as string)
      expect(url.hostname).toBe(external.family === 6 ? `[${external.address}]` : external.address)
      expect(url.hostname).not.toBe(os.hostname())
      expect((await fetch(new URL('/readyz', url))).status).toBe(200)
    }
  })

  it('`fleet web` refuses a loopback advertise URL on a wildcard listener, with its code, before opening anything', async () => {
    const env = isolatedEnv({
      FLEET_WEB_HOST: '0.0.0.0',
      FLEET_WEB_ADVERTISE_URL: 'http://localhost:8080',
      // Never reached: the refusal comes first.
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
    })
    const err = (await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'web'], {
      env: { ...process.env, ...env },
      timeout: 30_000,
    }).catch((e: unknown) => e)) as { code: number; stderr: string }
    expect(err.code).toBe(1)
    expect(err.stderr).toContain('[FLEET_E_REGISTRY_ADVERTISE_ADDRESS]')
    expect(err.stderr).toContain('FLEET_WEB_ADVERTISE_URL=http://localhost:8080 points at loopback')
  }, 40_000)
})
