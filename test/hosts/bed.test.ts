/**
 * The multi-host test bed, small and fast (issue 20, item 1): 1 LB host, 2 web hosts, 1 stores host
 * (PostgreSQL, store and cache Redis) as network namespaces, each host's processes started from deploy/.
 * It checks that each process runs exactly the command and environment deploy/ gives (item 7), that GETs
 * through the LB all succeed while a web host is powered off (cable out, every process SIGKILLed), and that
 * nothing the bed made is left after it. Needs root and iproute2 (skipped otherwise, saying so).
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Bed, waitFor } from '../../hosts/bed.js'
import { deployDir } from '../../hosts/deploy.js'
import { lbEligible } from '../../hosts/probes.js'
import { LB_ADMIN_PORT, WEB_PORT } from '../../hosts/services.js'
import { small } from '../../hosts/topology.js'

const ipFound = (() => {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()
const isRoot = process.getuid?.() === 0
const skipReason = !isRoot ? 'not root' : !ipFound ? 'no ip (iproute2)' : ''
if (skipReason)
  console.warn(`test/hosts/bed.test.ts skipped: ${skipReason} (the bed builds network namespaces)`)

const PREFIX = 'fleetbt'

/** The process's argv and environment, as the kernel has them. */
function procOf(pid: number): { argv: string[]; env: Record<string, string> } {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
  const env: Record<string, string> = {}
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean)) {
    const i = kv.indexOf('=')
    env[kv.slice(0, i)] = kv.slice(i + 1)
  }
  return { argv, env }
}

/** KEY=VALUE lines of a file, read plainly (not through the bed's parser). */
function envLines(file: string): Record<string, string> {
  if (!existsSync(file)) return {}
  const out: Record<string, string> = {}
  for (const line of readFileSync(file, 'utf8').split('\n'))
    if (/^[A-Z_]+=/.test(line)) out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1)
  return out
}

describe.skipIf(skipReason !== '')('multi-host test bed (small)', () => {
  // HOSTS_FLEET_DIR: another built Fleet for the hosts to run (default: this checkout's dist/, built by pretest).
  const bed = new Bed(small, {
    prefix: PREFIX,
    subnet: '10.77.1',
    fleetDir: process.env.HOSTS_FLEET_DIR || undefined,
  })

  beforeAll(async () => {
    // What a killed run would leave: a namespace with a process in it, and a folder. The bed removes them.
    execFileSync('ip', ['netns', 'add', `${PREFIX}-stale`])
    spawn('ip', ['netns', 'exec', `${PREFIX}-stale`, 'sleep', '600'], {
      stdio: 'ignore',
      detached: true,
    }).unref()
    mkdirSync(path.join(os.tmpdir(), `${PREFIX}-stale`), { recursive: true })
    await bed.up()
  }, 60_000)

  it('removed what an earlier run left', () => {
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`${PREFIX}-stale`)
    expect(existsSync(path.join(os.tmpdir(), `${PREFIX}-stale`))).toBe(false)
  })

  afterAll(async () => {
    await bed.down()
  }, 60_000)

  it('starts each Fleet role with exactly the command and environment of its unit and env files', () => {
    for (const h of small.hosts)
      for (const role of ['lb', 'web', 'worker'] as const) {
        const svc = bed.services.get(h.name)?.find((s) => s.name === `fleet-${role}`)
        if (!h.roles.includes(role)) continue
        expect(svc?.pid, `${h.name} fleet-${role} runs`).toBeTypeOf('number')
        const etc = path.join(bed.settings.dir, h.name, 'etc')
        const unit = readFileSync(path.join(etc, `fleet-${role}.service`), 'utf8')
        // The rendered unit is deploy/'s with only the placeholders filled.
        const template = readFileSync(path.join(deployDir, 'systemd', `fleet-${role}.service`), 'utf8')
        expect(unit.split('\n').length).toBe(template.split('\n').length)
        expect(unit).not.toMatch(/\{\{/)
        const execStart = (/^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '').split(' ')
        const files = [...unit.matchAll(/^EnvironmentFile=-?(.*)$/gm)].map((m) => m[1] as string)
        expect(files.map((f) => path.basename(f))).toEqual(['fleet.env', `${role}.env`, 'app.env'])
        const wanted = { PATH: expect.any(String), ...Object.assign({}, ...files.map(envLines)) }
        const actual = procOf(svc?.pid as number)
        expect(actual.argv).toEqual(execStart)
        expect(actual.env).toEqual(wanted)
        expect(actual.env.FLEET_INSTANCE_ID).toBe(h.name)
      }
  })

  it('starts each Redis with its rendered deploy/redis config', () => {
    const db1 = bed.services.get('db1') ?? []
    for (const role of ['store', 'cache']) {
      const svc = db1.find((s) => s.name === `redis-${role}`)
      const conf = path.join(bed.settings.dir, 'db1', 'etc', `redis-${role}.conf`)
      // redis-server retitles itself (`redis-server <addr>:<port>`): the command is the bed's, the title the config's.
      expect([svc?.spec.command, ...(svc?.spec.args ?? [])]).toEqual(['/usr/bin/redis-server', conf])
      const port = role === 'store' ? small.storePort : small.cachePort
      expect(procOf(svc?.pid as number).argv).toEqual([`/usr/bin/redis-server ${bed.addr('db1')}:${port}`])
      const template = readFileSync(path.join(deployDir, 'redis', `${role}.conf`), 'utf8')
      const rendered = readFileSync(conf, 'utf8')
      // Every setting line without a placeholder is there as written.
      for (const line of template.split('\n'))
        if (line && !line.startsWith('#') && !line.includes('{{')) expect(rendered).toContain(line)
    }
  })

  it('serves every GET through the LB while a web host is powered off', async () => {
    let failed = 0
    let total = 0
    let slowest = 0
    let loading = true
    const codes: string[] = []
    const readers = Array.from({ length: 4 }, async () => {
      while (loading) {
        const start = Date.now()
        const url = total % 2 ? '/api/categories' : '/api/products?limit=10'
        let status = 0
        try {
          const r = await fetch(`${bed.entry}${url}`, { signal: AbortSignal.timeout(10_000) })
          await r.arrayBuffer()
          status = r.status
        } catch (err) {
          codes.push((err as Error).name)
        }
        total++
        slowest = Math.max(slowest, Date.now() - start)
        if (status !== 200) {
          failed++
          codes.push(String(status))
        }
        await new Promise((r) => setTimeout(r, 10))
      }
    })
    // The readers are under way before the host goes.
    expect(await waitFor(async () => total >= 20, 10_000, 20)).toBe(true)
    await bed.powerOff('web2')
    // The LB drops the dead host from its rotation (health checks), and keeps serving meanwhile.
    const admin = `http://${bed.addr('lb1')}:${LB_ADMIN_PORT}`
    const web2 = `http://${bed.addr('web2')}:${WEB_PORT}`
    const routedAround = await waitFor(async () => {
      const eligible = await lbEligible(admin)
      return eligible !== undefined && eligible.length === 1 && !eligible.some((u) => u.startsWith(web2))
    }, 15_000)
    // And GETs go on after it did (on web1 alone).
    const routedAt = total
    expect(await waitFor(async () => total >= routedAt + 40, 10_000, 20)).toBe(true)
    loading = false
    await Promise.all(readers)
    expect(routedAround).toBe(true)
    expect({ failed, codes }).toEqual({ failed: 0, codes: [] })
    expect(total).toBeGreaterThan(50)
    console.log(`web host power-off: ${total} GETs, 0 failed, slowest ${slowest} ms`)
  }, 40_000)

  it('leaves nothing behind', async () => {
    await bed.down()
    const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    expect(ns).not.toContain(`${PREFIX}-`)
    expect(links).not.toContain(`${PREFIX}-`)
    expect(Bed.leftoverFolders(PREFIX)).toEqual([])
  }, 40_000)
})
