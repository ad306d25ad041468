/**
 * The control socket of `fleet up`: HTTP over the unix socket `<data dir>/fleet.sock`, so that `fleet status`
 * and `fleet restart` in another terminal talk to the running supervisor. Only the owner may connect (0600).
 *
 * - `GET /status` -> 200, the StatusReport as JSON
 * - `POST /restart?target=<role|name>` -> 200 and one JSON line per RestartProgress as the rolling restart
 *   goes (the last has event `done` or `failed`); 400 with `{ error: { code, message } }` for a bad target
 *   or while another restart runs.
 */
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import http from 'node:http'
import readline from 'node:readline'
import { isFleetError } from '../errors.js'
import { ControlRequestError, NoSupervisorError, StackRunningError } from './errors.js'
import type { StatusReport } from './status.js'
import type { RestartProgress } from './supervisor.js'

export interface ControlHandlers {
  status(): StatusReport
  restart(target: string, onProgress: (p: RestartProgress) => void): Promise<void>
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function sendError(res: http.ServerResponse, err: unknown): void {
  const code = isFleetError(err) ? err.code : 'FLEET_E_INTERNAL'
  const status = isFleetError(err) ? err.statusCode : 500
  sendJson(res, status, { error: { code, message: (err as Error).message } })
}

export class ControlServer {
  readonly #path: string
  readonly #handlers: ControlHandlers
  readonly #server: http.Server

  /** True once this server listens on the socket: the file is then its own to remove. */
  #listening = false

  constructor(socketPath: string, handlers: ControlHandlers) {
    this.#path = socketPath
    this.#handlers = handlers
    this.#server = http.createServer((req, res) => void this.#handle(req, res))
    // A rolling restart streams its progress for minutes with long quiet gaps: no timeout may cut it.
    this.#server.requestTimeout = 0
  }

  get path(): string {
    return this.#path
  }

  /**
   * Listens on the socket. A socket file left by a supervisor that died is removed; one that still answers
   * means another `fleet up` runs on this data folder (StackRunningError).
   */
  async listen(dataDir: string): Promise<void> {
    if (existsSync(this.#path)) {
      const alive = await requestStatus(this.#path, 1_000).then(
        () => true,
        () => false,
      )
      if (alive) throw new StackRunningError(dataDir)
      await fs.rm(this.#path, { force: true })
    }
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(this.#path, () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
    this.#listening = true
    await fs.chmod(this.#path, 0o600)
  }

  /** Stops listening and removes the socket file, only if this server made it (a refused `listen` leaves it). */
  async close(): Promise<void> {
    if (!this.#listening) return
    this.#listening = false
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
    await fs.rm(this.#path, { force: true })
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fleet')
    try {
      if (req.method === 'GET' && url.pathname === '/status') {
        sendJson(res, 200, this.#handlers.status())
        return
      }
      if (req.method === 'POST' && url.pathname === '/restart') {
        const target = url.searchParams.get('target') ?? url.searchParams.get('role') ?? ''
        await this.#handlers.restart(target, (p) => {
          if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/x-ndjson' })
          res.write(`${JSON.stringify(p)}\n`)
        })
        res.end()
        return
      }
      sendJson(res, 404, {
        error: { code: 'FLEET_E_STACK_BAD_REQUEST', message: 'use GET /status or POST /restart?target=web' },
      })
    } catch (err) {
      if (res.headersSent) res.end()
      else sendError(res, err)
    }
  }
}

interface Answer {
  status: number
  res: http.IncomingMessage
}

function request(socketPath: string, method: string, path: string, timeoutMs?: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // agent: false: the global agent's 5 s socket timeout would cut a long restart stream.
    const req = http.request({ socketPath, method, path, agent: false }, (res) => {
      req.setTimeout(0)
      resolve({ status: res.statusCode ?? 0, res })
    })
    if (timeoutMs !== undefined)
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK')
        reject(new NoSupervisorError(socketPath, { cause: err }))
      else reject(err)
    })
    req.end()
  })
}

async function readAll(res: http.IncomingMessage): Promise<string> {
  let text = ''
  for await (const chunk of res) text += String(chunk)
  return text
}

/** The supervisor's error answer as a ControlRequestError carrying its message. */
function answerError(status: number, text: string): Error {
  try {
    const body = JSON.parse(text) as { error?: { message?: string } }
    return new ControlRequestError(body.error?.message ?? `the supervisor answered ${status}: ${text}`)
  } catch {
    return new ControlRequestError(`the supervisor answered ${status}: ${text}`)
  }
}

/** Asks the supervisor behind `socketPath` for its status; NoSupervisorError when none listens. */
export async function requestStatus(socketPath: string, timeoutMs = 5_000): Promise<StatusReport> {
  const { status, res } = await request(socketPath, 'GET', '/status', timeoutMs)
  const text = await readAll(res)
  if (status !== 200) throw answerError(status, text)
  return JSON.parse(text) as StatusReport
}

/**
 * Asks for a rolling restart of `target` and reports each step as it comes; resolves with the last step
 * (event `done` or `failed`).
 */
export async function requestRestart(
  socketPath: string,
  target: string,
  onProgress: (p: RestartProgress) => void = () => {},
): Promise<RestartProgress> {
  const { status, res } = await request(socketPath, 'POST', `/restart?target=${encodeURIComponent(target)}`)
  if (status !== 200) throw answerError(status, await readAll(res))
  let last: RestartProgress = { event: 'failed', message: 'the supervisor closed the connection' }
  for await (const line of readline.createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY })) {
    if (!line) continue
    last = JSON.parse(line) as RestartProgress
    onProgress(last)
  }
  return last
}
