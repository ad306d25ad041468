/**
 * deploy/ as the test bed reads it (issue 20, item 7), for every host of the full topology and without
 * root: every template fills with the bed's placeholders and nothing else, and each Fleet role's unit
 * starts `node <fleet>/dist/cli.js <role>` with its env files' settings, in order, as systemd would.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { deployDir, parseEnvFile, parseUnit, render, splitCommand } from '../../hosts/deploy.js'
import { type BedSettings, fleetStart, hostFolder, placeholders } from '../../hosts/services.js'
import { full } from '../../hosts/topology.js'

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-deploy-test-'))
const settings: BedSettings = {
  subnet: '10.77.5',
  topology: full,
  dir,
  pgPassword: 'secret',
  fleetDir: '/opt/fleet',
  app: '/opt/shop/app.js',
  admin: { email: 'admin@example.com', password: 'admin password' },
}

afterAll(() => fs.rm(dir, { recursive: true, force: true }))

describe('deploy/ templates', () => {
  it('fill from the documented placeholders, and name no other', async () => {
    const docs = await fs.readFile(path.join(deployDir, '..', 'docs', 'deploy.md'), 'utf8')
    for (const sub of ['systemd', 'redis', 'keepalived'])
      for (const f of await fs.readdir(path.join(deployDir, sub))) {
        const text = await fs.readFile(path.join(deployDir, sub, f), 'utf8')
        for (const [, name] of text.matchAll(/\{\{([A-Z_]+)\}\}/g))
          expect(docs, `{{${name}}} of deploy/${sub}/${f} is in docs/deploy.md`).toContain(`\`${name}\``)
      }
    expect(() => render('a {{NOPE}} b', {})).toThrow(/NOPE/)
  })

  it("start each Fleet role with the unit's command and its env files in order", async () => {
    for (const h of full.hosts)
      for (const role of h.roles) {
        if (role !== 'lb' && role !== 'web' && role !== 'worker') continue
        await fs.mkdir(hostFolder(settings, h, 'etc'), { recursive: true })
        const spec = await fleetStart(settings, h, role)
        expect([spec.command, ...spec.args]).toEqual([process.execPath, '/opt/fleet/dist/cli.js', role])
        expect(spec.cwd).toBe(hostFolder(settings, h, 'data'))
        const addr = `10.77.5.${h.octet}`
        expect(spec.env).toMatchObject({
          FLEET_INSTANCE_ID: h.name,
          FLEET_APP: '/opt/shop/app.js',
          DATABASE_URL: 'postgres://fleet:secret@10.77.5.61:5432/fleet',
          REDIS_URL: 'redis+sentinel://10.77.5.41:26379,10.77.5.42:26379,10.77.5.43:26379/fleet-store',
          CACHE_REDIS_URL: 'redis+sentinel://10.77.5.41:26379,10.77.5.42:26379,10.77.5.43:26379/fleet-cache',
          FLEET_STORE_WAIT_REPLICAS: '1',
        })
        if (role === 'web') expect(spec.env.FLEET_WEB_ADVERTISE_URL).toBe(`http://${addr}:8080`)
        if (role === 'worker') {
          expect(spec.env.FLEET_WORKER_ADVERTISE_URL).toBe(`http://${addr}:8090`)
          expect(spec.nice).toBe(10)
        }
        if (role === 'lb')
          expect(spec.env).toMatchObject({ FLEET_LB_NAME: h.name, FLEET_LB_ADMIN_HOST: addr })
      }
  })

  it('parse units and env files as systemd does', () => {
    expect(splitCommand(`/bin/a "b c" 'd' e\\ f`)).toEqual(['/bin/a', 'b c', 'd', 'e f'])
    const unit = parseUnit(
      '[Unit]\nExecStart=/nope\n[Service]\nEnvironmentFile=/a\nEnvironmentFile=-/b\nEnvironment="X=1 2" Y=3\nExecStart=-/bin/x y\nRestartSec=2s\n',
    )
    expect(unit).toMatchObject({
      execStart: ['/bin/x', 'y'],
      environmentFiles: [
        { path: '/a', optional: false },
        { path: '/b', optional: true },
      ],
      environment: { X: '1 2', Y: '3' },
      restartSec: 2,
    })
    expect(parseEnvFile('# c\n\nA=1\nB="two words"\n')).toEqual({ A: '1', B: 'two words' })
  })

  it('give each host its own name and address', () => {
    const lb1 = placeholders(settings, full.hosts[0] as (typeof full.hosts)[0])
    expect(lb1).toMatchObject({ HOST_NAME: 'lb1', HOST_ADDR: '10.77.5.11', QUORUM: '2' })
  })
})
