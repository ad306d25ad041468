/**
 * Asking the bed's hosts how they are, from this process over the bridge: HTTP readiness, the LB's /status,
 * and Redis or Sentinel through redis-cli (one short-lived call each, nothing left connected).
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { getJson } from '../src/stack/settle.js'

const exec = promisify(execFile)

export { getJson }

/** True when `url` answers 200 within a second. */
export async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) })
    await res.arrayBuffer()
    return res.status === 200
  } catch {
    return false
  }
}

/** One redis-cli command against addr:port; its raw output, or undefined on any failure. */
export async function redisCli(addr: string, port: number, ...args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await exec('redis-cli', ['-h', addr, '-p', String(port), '--raw', ...args], {
      timeout: 2_000,
    })
    return stdout.startsWith('ERR') || stdout.startsWith('LOADING') ? undefined : stdout
  } catch {
    return undefined
  }
}

/** INFO <section> as a map (undefined when the server does not answer). */
export async function redisInfo(addr: string, port: number, section: string) {
  const out = await redisCli(addr, port, 'INFO', section)
  if (out === undefined) return undefined
  const map = new Map<string, string>()
  for (const line of out.split('\n')) {
    const i = line.indexOf(':')
    if (i > 0) map.set(line.slice(0, i), line.slice(i + 1).trim())
  }
  return map
}

/** The primary a Sentinel names for `master` ("addr:port"), or undefined. */
export async function sentinelPrimary(addr: string, master: string): Promise<string | undefined> {
  const out = await redisCli(addr, 26379, 'SENTINEL', 'get-master-addr-by-name', master)
  const [host, port] = (out ?? '').trim().split('\n')
  return host && port ? `${host}:${port}` : undefined
}

/** The upstream URLs the LB whose admin port is at `adminUrl` routes to (eligible), or undefined. */
export async function lbEligible(adminUrl: string): Promise<string[] | undefined> {
  const status = (await getJson(`${adminUrl}/status`)) as
    | { upstreams?: { url: string; eligible: boolean }[] }
    | undefined
  return status?.upstreams?.filter((u) => u.eligible).map((u) => u.url)
}
