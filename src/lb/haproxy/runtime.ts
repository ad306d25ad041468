/**
 * HAProxy's runtime API over its admin socket: one connection per command (HAProxy closes it after the
 * answer), and the two readings the control plane needs, `show stat` as rows and the servers' states.
 */
import net from 'node:net'

/** Thrown when HAProxy refuses a command or the socket fails. */
export class RuntimeApiError extends Error {}

export class RuntimeApi {
  constructor(readonly socketPath: string) {}

  /** Sends one command; resolves with HAProxy's answer (trimmed). */
  send(command: string, timeoutMs = 5_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.socketPath)
      const chunks: Buffer[] = []
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new RuntimeApiError(`haproxy: no answer to "${command}" within ${timeoutMs} ms`))
      }, timeoutMs)
      socket.on('connect', () => socket.end(`${command}\n`))
      socket.on('data', (c: Buffer) => chunks.push(c))
      socket.on('error', (err) => {
        clearTimeout(timer)
        reject(new RuntimeApiError(`haproxy: "${command}" failed: ${err.message}`))
      })
      socket.on('close', () => {
        clearTimeout(timer)
        resolve(Buffer.concat(chunks).toString('utf8').trim())
      })
    })
  }

  /** Sends a command whose success HAProxy answers with an empty line or one of `ok`; throws otherwise. */
  async run(command: string, ...ok: string[]): Promise<void> {
    const answer = await this.send(command)
    if (answer === '' || ok.some((o) => answer.includes(o))) return
    throw new RuntimeApiError(`haproxy refused "${command}": ${answer}`)
  }

  /** `show stat` as one object per row (frontends, servers, backends), keyed by the CSV header's names. */
  async stats(): Promise<Record<string, string>[]> {
    const text = await this.send('show stat')
    const [head, ...rows] = text.split('\n')
    if (!head?.startsWith('# '))
      throw new RuntimeApiError(`haproxy: unexpected "show stat" answer: ${text.slice(0, 200)}`)
    const names = head.slice(2).split(',')
    return rows
      .filter((r) => r.length > 0)
      .map((r) => {
        const cells = r.split(',')
        const row: Record<string, string> = {}
        for (let i = 0; i < names.length; i++) if (names[i]) row[names[i]] = cells[i] ?? ''
        return row
      })
  }
}
