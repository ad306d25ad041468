/**
 * The address a process publishes in the registry, where other machines (the load balancer, Prometheus
 * through /dashboard/targets, `fleet status`) reach it. Right by default or refused:
 * - an advertise URL that is set is published as it is, unless it points at loopback (127.0.0.0/8, ::1, or
 *   a name that resolves only there) while the listener is not on loopback: nobody else could reach that;
 * - a listener on one address publishes that address;
 * - a listener on every interface (0.0.0.0, ::) publishes the first non-internal IPv4 address of the
 *   machine's interfaces (os.networkInterfaces(), in their order; IPv6 when there is no IPv4), and says
 *   which it chose; with none, it is refused, so the process never logs "ready" at an address nobody reaches.
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import os from 'node:os'
import { isLoopback } from '../net/loopback.js'
import { AdvertiseAddressError } from './errors.js'

/** The interfaces of the machine, as os.networkInterfaces() lists them. */
export type Interfaces = NodeJS.Dict<os.NetworkInterfaceInfo[]>

/** What `advertisedUrl` decided, and why (for the log line). */
export interface Advertised {
  url: string
  /** `set` (the advertise setting), `listener` (the address listened on), `interface` (chosen for a wildcard). */
  source: 'set' | 'listener' | 'interface'
  /** The interface whose address was chosen, for `interface`. */
  interface?: string
}

/** True for a listen address that means every interface. */
export function isWildcard(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  return h === '' || h === '0.0.0.0' || (h.includes(':') && /^[0:]+$/.test(h))
}

/**
 * The first non-internal address of `interfaces`: IPv4 first, else a global IPv6 (no link-local, which
 * needs a zone), with its interface's name; undefined when the machine has none.
 */
export function firstExternalAddress(
  interfaces: Interfaces,
): { address: string; family: 4 | 6; name: string } | undefined {
  const all = Object.entries(interfaces).flatMap(([name, list]) => (list ?? []).map((i) => ({ name, i })))
  const v4 = all.find(({ i }) => i.family === 'IPv4' && !i.internal && !isLoopback(i.address))
  if (v4) return { address: v4.i.address, family: 4, name: v4.name }
  const v6 = all.find(
    ({ i }) => i.family === 'IPv6' && !i.internal && !isLoopback(i.address) && !/^fe80:/i.test(i.address),
  )
  return v6 ? { address: v6.i.address, family: 6, name: v6.name } : undefined
}

/** True when `hostname` is a loopback address, or a name whose every address is one. */
async function resolvesToLoopback(hostname: string): Promise<boolean> {
  const bare = hostname.replace(/^\[|\]$/g, '')
  if (isIP(bare)) return isLoopback(bare)
  if (bare.toLowerCase() === 'localhost') return true
  try {
    const addresses = await lookup(bare, { all: true })
    return addresses.length > 0 && addresses.every((a) => isLoopback(a.address))
  } catch {
    return false // unknown here; the process that reads the registry may resolve it
  }
}

/**
 * The URL to publish for a listener on `host:port` (see the module's comment), or an
 * AdvertiseAddressError naming the setting to change.
 * @example const { url } = await advertisedUrl({ host: '0.0.0.0', port, advertiseUrl: undefined, settings: WEB })
 */
export async function advertisedUrl(o: {
  host: string
  port: number
  advertiseUrl: string | undefined
  /** The settings to name in a refusal: the listen address's and the advertise URL's. */
  settings: { host: string; advertise: string }
  /** Injectable for tests; default os.networkInterfaces(). */
  interfaces?: Interfaces
}): Promise<Advertised> {
  const listensOnLoopback = !isWildcard(o.host) && (await resolvesToLoopback(o.host))
  if (o.advertiseUrl !== undefined) {
    const { hostname } = new URL(o.advertiseUrl)
    if (!listensOnLoopback && (await resolvesToLoopback(hostname))) {
      throw new AdvertiseAddressError(
        `${o.settings.advertise}=${o.advertiseUrl} points at loopback while ${o.settings.host}=${o.host || '(every interface)'}: no other machine reaches it; advertise an address of this machine that they do reach`,
      )
    }
    return { url: o.advertiseUrl, source: 'set' }
  }
  if (!isWildcard(o.host)) return { url: `http://${bracketed(o.host)}:${o.port}`, source: 'listener' }
  const chosen = firstExternalAddress(o.interfaces ?? os.networkInterfaces())
  if (!chosen) {
    throw new AdvertiseAddressError(
      `${o.settings.host}=${o.host} listens on every interface, but this machine has no non-loopback address to advertise: set ${o.settings.advertise}`,
    )
  }
  return { url: `http://${bracketed(chosen.address)}:${o.port}`, source: 'interface', interface: chosen.name }
}

function bracketed(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host
}

/** Logs a choice the operator did not make: the interface address published for a wildcard listener. */
export function logAdvertised(
  logger: { info(obj: object, msg: string): void },
  advertised: Advertised,
  setting: string,
): void {
  if (advertised.source !== 'interface') return
  logger.info(
    { url: advertised.url, interface: advertised.interface },
    `listening on every interface: advertising ${advertised.url} (the first non-loopback address, of ${advertised.interface}); set ${setting} to choose another`,
  )
}

/**
 * Where a listener on `host:port` is reached from elsewhere, as a best guess that is never refused (the
 * LB's public and admin ports in its registry entry): a wildcard is the first non-loopback address.
 */
export function reachableUrl(host: string, port: number, scheme = 'http', interfaces?: Interfaces): string {
  const at = isWildcard(host)
    ? (firstExternalAddress(interfaces ?? os.networkInterfaces())?.address ?? '127.0.0.1')
    : host
  return `${scheme}://${bracketed(at)}:${port}`
}
