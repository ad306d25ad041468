/** Loopback addresses and Host names: what the admin port answers while it listens on loopback. */

/** True for 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false
  const a = address.startsWith('::ffff:') ? address.slice(7) : address
  return a === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a)
}

/** The host name of a Host header value (no port, no IPv6 brackets); '' when there is none. */
export function hostnameOf(host: string | undefined): string {
  if (!host) return ''
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'))
  return host.replace(/:\d+$/, '')
}

/** True when a Host header names this machine by a loopback name: localhost, 127.x.y.z, [::1]. */
export function isLoopbackHost(host: string | undefined): boolean {
  const h = hostnameOf(host).toLowerCase()
  return h === 'localhost' || isLoopback(h)
}
