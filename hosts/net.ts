/**
 * The test bed's network: one Linux network namespace per host, each with `lo` up and an `eth0` (one end of a
 * veth pair) whose other end is on one bridge, all in a private /24 of ours. The bridge has the subnet's .1,
 * so this process (the clients of the load, the checks) reaches every host; the hosts have no default route,
 * so nothing leaves the bridge. Every namespace and link is named after the bed's prefix (`fleetbed-…`), which
 * is how leftovers of an earlier run are found and removed.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const exec = promisify(execFile)

/** Runs `ip <args>`; resolves with its stdout; rejects with its stderr in the message. */
export async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await exec('ip', args, { timeout: 10_000 })
    return stdout
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`, { cause: err })
  }
}

/** Pids of every process in namespace `ns` (none when it is gone). */
export async function netnsPids(ns: string): Promise<number[]> {
  const out = await ip('netns', 'pids', ns).catch(() => '')
  return out.split('\n').filter(Boolean).map(Number)
}

/** SIGKILLs every process in `ns` until none is left (a dying parent may fork no more, but retry a few times). */
export async function killNamespace(ns: string): Promise<number> {
  let killed = 0
  for (let round = 0; round < 20; round++) {
    const pids = await netnsPids(ns)
    if (pids.length === 0) return killed
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL')
        killed++
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`processes left in ${ns} after 20 rounds of SIGKILL: ${(await netnsPids(ns)).join(' ')}`)
}

export class Network {
  /** The bridge. */
  readonly bridge: string
  /** This process's address on the bridge (the subnet's .1). */
  readonly gateway: string

  /**
   * @param prefix names every namespace (`<prefix>-<host>`) and link (`<prefix>-br`, `<prefix>-<host>`)
   * @param subnet the first three octets of the /24 (e.g. `10.77.0`)
   */
  constructor(
    readonly prefix: string,
    readonly subnet: string,
  ) {
    this.bridge = `${prefix}-br`
    this.gateway = `${subnet}.1`
  }

  /** The namespace of host `name`. */
  ns(name: string): string {
    return `${this.prefix}-${name}`
  }

  /** The bridge-side end of host `name`'s veth pair (a link name has at most 15 characters). */
  link(name: string): string {
    const link = `${this.prefix}-${name}`
    if (link.length > 15)
      throw new Error(`link name ${link} is longer than 15 characters: use a shorter host name`)
    return link
  }

  /** Removes every namespace (killing its processes first) and link named after the prefix. */
  async removeLeftovers(): Promise<string[]> {
    const removed: string[] = []
    const list = await ip('netns', 'list')
    for (const line of list.split('\n')) {
      const ns = line.split(' ')[0]
      if (!ns?.startsWith(`${this.prefix}-`)) continue
      await killNamespace(ns)
      await ip('netns', 'del', ns).catch((err: Error) => {
        if (!/No such file/.test(err.message)) throw err // else removed meanwhile
      })
      removed.push(`namespace ${ns}`)
    }
    const links = await ip('-o', 'link', 'show')
    for (const line of links.split('\n')) {
      const name = line.split(': ')[1]?.split('@')[0]
      if (!name?.startsWith(`${this.prefix}-`)) continue
      await ip('link', 'del', name).catch(() => undefined) // a veth's peer went with its namespace
      removed.push(`link ${name}`)
    }
    return removed
  }

  /** The bridge, up, with the gateway address. */
  async create(): Promise<void> {
    const used = await ip('-4', '-o', 'addr', 'show')
    if (used.includes(` ${this.subnet}.`))
      throw new Error(`${this.subnet}.0/24 is already in use on this machine:\n${used}`)
    await ip('link', 'add', this.bridge, 'type', 'bridge')
    await ip('addr', 'add', `${this.gateway}/24`, 'dev', this.bridge)
    await ip('link', 'set', this.bridge, 'up')
  }

  /** Host `name`: its namespace with `lo` up and `eth0` at `addr`/24 on the bridge. */
  async addHost(name: string, addr: string): Promise<void> {
    const ns = this.ns(name)
    const link = this.link(name)
    await ip('netns', 'add', ns)
    await ip('-n', ns, 'link', 'set', 'lo', 'up')
    // The peer is made inside the namespace as eth0.
    await ip('link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
    await ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0')
    await ip('-n', ns, 'link', 'set', 'eth0', 'up')
    await ip('link', 'set', link, 'master', this.bridge)
    await ip('link', 'set', link, 'up')
  }

  /** Cable out (`down`) or in: the bridge-side end of the host's veth. The host keeps its address. */
  async setLink(name: string, state: 'up' | 'down'): Promise<void> {
    await ip('link', 'set', this.link(name), state)
  }

  /** Every namespace, process in it and link of ours gone. */
  async destroy(): Promise<string[]> {
    const removed = await this.removeLeftovers()
    await ip('link', 'del', this.bridge).catch(() => undefined)
    return removed
  }
}
