/**
 * Fault injection for the network path to a service: a TCP relay that can cut every connection and refuse
 * new ones (an outage) and then come back on the same port.
 */
import net from 'node:net'

export class TcpRelay {
  readonly #target: { host: string; port: number }
  readonly #sockets = new Set<net.Socket>()
  #server: net.Server | undefined
  port = 0

  constructor(target: { host: string; port: number }) {
    this.#target = target
  }

  /** Starts relaying on `port` (0: a free one first time, then the same port again). */
  async up(): Promise<void> {
    const server = net.createServer((client) => {
      const up = net.connect(this.#target)
      this.#sockets.add(client).add(up)
      const close = (): void => {
        client.destroy()
        up.destroy()
        this.#sockets.delete(client)
        this.#sockets.delete(up)
      }
      client.on('error', close).on('close', close)
      up.on('error', close).on('close', close)
      client.pipe(up).pipe(client)
    })
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r))
    this.port = (server.address() as net.AddressInfo).port
    this.#server = server
  }

  /** The outage: every connection is cut and new ones are refused. */
  async down(): Promise<void> {
    const server = this.#server
    this.#server = undefined
    for (const s of this.#sockets) s.destroy()
    this.#sockets.clear()
    if (server) await new Promise((r) => server.close(r))
  }
}
