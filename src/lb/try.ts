/**
 * One try: one attempt of a client request against one upstream, as undici's dispatch handler. Its life is
 * a small state machine, and `TRY_MOVES` below is every move it may make:
 *
 * ```
 *   connecting ──▶ sent ──▶ streaming ──▶ done
 *        │           │          │
 *        ├───────────┼──────────┴───────▶ failed      undici reported an error (faults.ts says what kind)
 *        └───────────┴──────────┴───────▶ cancelled ──▶ aborted
 *                                         the exchange aborted it (another try won, the client left, the
 *                                         request failed); `aborted` once undici's last callback came
 * ```
 *
 * - `connecting`: dispatched to the upstream's pool, waiting for a connection. Nothing reached the upstream.
 * - `sent`: the connection is up and the request goes (or went) on it; no response headers yet.
 * - `streaming`: this try's response headers went to the client (it won), its body follows.
 * - `done`, `failed`, `aborted`: undici called its last callback; the try holds nothing any more.
 *
 * The Exchange (exchange.ts) decides the moves that are its choice (sent, streaming, cancelled); the try
 * makes the ones undici reports (done, failed, aborted) and hands each event to the Exchange.
 */
import type { Dispatcher } from 'undici'
import type { BodyMeter } from './body.js'
import type { Upstream } from './upstream.js'

export type TryState = 'connecting' | 'sent' | 'streaming' | 'done' | 'failed' | 'cancelled' | 'aborted'

/** From each state, the states a try may move to: a state missing from a list cannot follow it. */
export const TRY_MOVES: { readonly [S in TryState]: readonly TryState[] } = {
  connecting: ['sent', 'failed', 'cancelled'],
  sent: ['streaming', 'failed', 'cancelled'],
  streaming: ['done', 'failed', 'cancelled'],
  cancelled: ['aborted'],
  done: [],
  failed: [],
  aborted: [],
}

/** A request body as one try sends it: none, the held bytes, or the one stream of a large body. */
export type TryBody = Buffer | BodyMeter | null

/** What a try reports to: the Exchange. Each call follows the undici callback of the same name. */
export interface TryOwner {
  connected(t: Try): void
  headers(t: Try, statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean
  data(t: Try, chunk: Buffer): boolean
  complete(t: Try): void
  /** `from`: the state the try was in when the error came. */
  error(t: Try, from: TryState, err: Error): void
}

/** One attempt on one upstream: its state, and undici's callbacks forwarded to its owner. */
export class Try implements Dispatcher.DispatchHandler {
  readonly owner: TryOwner
  readonly upstream: Upstream
  readonly body: TryBody
  #state: TryState = 'connecting'
  abort: ((err?: Error) => void) | undefined
  /** Resumes a response paused by backpressure. */
  resume: (() => void) | undefined
  /** The per-try timeout (hedging). */
  timer: NodeJS.Timeout | undefined
  /** Its per-try timeout passed without response headers. */
  slow = false

  constructor(owner: TryOwner, upstream: Upstream, body: TryBody) {
    this.owner = owner
    this.upstream = upstream
    this.body = body
  }

  get state(): TryState {
    return this.#state
  }

  /** Undici has called its last callback (complete or error): the try holds no connection, timer or body. */
  get ended(): boolean {
    return this.#state === 'done' || this.#state === 'failed' || this.#state === 'aborted'
  }

  /** Moves to `next` when TRY_MOVES allows it from the current state; false (and no move) when not. */
  moveTo(next: TryState): boolean {
    if (!TRY_MOVES[this.#state].includes(next)) return false
    this.#state = next
    return true
  }

  /** Aborts the upstream request (now, or as soon as it connects): whatever undici reports next is expected. */
  cancel(err: Error): void {
    this.moveTo('cancelled')
    this.abort?.(err)
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort
    this.owner.connected(this)
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    return this.owner.headers(this, statusCode, rawHeaders, resume, statusText)
  }

  onData(chunk: Buffer): boolean {
    return this.owner.data(this, chunk)
  }

  onComplete(): void {
    if (this.moveTo(this.#state === 'cancelled' ? 'aborted' : 'done')) this.owner.complete(this)
  }

  onError(err: Error): void {
    const from = this.#state
    if (this.moveTo(from === 'cancelled' ? 'aborted' : 'failed')) this.owner.error(this, from, err)
  }
}
