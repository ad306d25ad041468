/**
 * The supervisor of `fleet up`: owns the children (LB, web servers, workers), starts them, restarts them
 * one at a time on request (a rolling restart that keeps the others serving), and stops them in order.
 */
import { Child, type ChildSnapshot, type ChildSpec, type ChildState } from './child.js'
import { ControlRequestError } from './errors.js'

export interface SupervisorOptions {
  /** Every state change of every child. */
  onState?: (child: ChildSnapshot, previous: ChildState) => void
  /** How long a child of each role may take to stop after SIGTERM before it gets SIGKILL. */
  stopTimeoutMs: (role: string) => number
  /** How long a restarted child may take to become ready. */
  readyTimeoutMs: number
  /**
   * After a child restarted by a rolling restart is ready and before the next one stops: e.g. wait until
   * the load balancer routes to it again. Resolves to a note for the progress line.
   */
  settle?: (child: ChildSnapshot) => Promise<string | undefined>
}

/** One step of a rolling restart, as the control socket streams it. */
export interface RestartProgress {
  event: 'stopping' | 'ready' | 'done' | 'failed'
  name?: string
  pid?: number
  ms?: number
  message: string
}

export class Supervisor {
  readonly #options: SupervisorOptions
  readonly #children: Child[] = []
  #restarting: string | undefined

  constructor(options: SupervisorOptions) {
    this.#options = options
  }

  /** Adds a child (not started). */
  add(spec: ChildSpec): Child {
    const child = new Child({
      ...spec,
      onState: (snap, previous) => {
        spec.onState?.(snap, previous)
        this.#options.onState?.(snap, previous)
      },
    })
    this.#children.push(child)
    return child
  }

  get children(): readonly Child[] {
    return this.#children
  }

  /** The children of `target`: a role (`web`) or one name (`web-2`). */
  select(target: string): Child[] {
    return this.#children.filter((c) => c.role === target || c.name === target)
  }

  snapshots(): ChildSnapshot[] {
    return this.#children.map((c) => c.snapshot())
  }

  startAll(): void {
    for (const c of this.#children) c.start()
  }

  /**
   * Waits until every child is ready, `timeoutMs` passed, or `abandon()` says to stop waiting; returns the
   * names still not ready.
   */
  async waitAllReady(timeoutMs: number, abandon: () => boolean = () => false): Promise<string[]> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const pending = this.#children.filter((c) => c.state !== 'ready').map((c) => c.name)
      if (pending.length === 0 || Date.now() >= deadline || abandon()) return pending
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  /**
   * Rolling restart of `target` (a role or a name): each child in turn gets SIGTERM (it drains), starts
   * again, and must be ready (and settled) before the next one stops. Only one rolling restart runs at a time.
   */
  async restart(target: string, onProgress: (p: RestartProgress) => void = () => {}): Promise<void> {
    const chosen = this.select(target)
    if (chosen.length === 0) {
      const roles = [...new Set(this.#children.map((c) => c.role))].join(', ')
      throw new ControlRequestError(
        `nothing to restart named ${JSON.stringify(target)}: give a role (${roles}) or a process name (${this.#children.map((c) => c.name).join(', ')})`,
      )
    }
    if (this.#restarting)
      throw new ControlRequestError(`a restart of ${this.#restarting} is already running; wait for it to end`)
    this.#restarting = target
    const begun = Date.now()
    try {
      for (const child of chosen) {
        const t0 = Date.now()
        onProgress({
          event: 'stopping',
          name: child.name,
          pid: child.pid,
          message: `${child.name}: stopping (pid ${child.pid ?? '-'}), letting it drain`,
        })
        await child.restart(this.#options.stopTimeoutMs(child.role), this.#options.readyTimeoutMs)
        const note = await this.#options.settle?.(child.snapshot())
        onProgress({
          event: 'ready',
          name: child.name,
          pid: child.pid,
          ms: Date.now() - t0,
          message: `${child.name}: ready again (pid ${child.pid}) after ${Date.now() - t0} ms${note ? `, ${note}` : ''}`,
        })
      }
      onProgress({
        event: 'done',
        ms: Date.now() - begun,
        message: `restarted ${chosen.length} process${chosen.length === 1 ? '' : 'es'} of ${target} in ${Date.now() - begun} ms`,
      })
    } catch (err) {
      onProgress({ event: 'failed', message: `restart of ${target} stopped: ${(err as Error).message}` })
      throw err
    } finally {
      this.#restarting = undefined
    }
  }

  /**
   * Stops the children role by role, in the order given (each role's children together), gracefully:
   * SIGTERM, then SIGKILL past the role's stop timeout. Children of roles not named stop last.
   */
  async stop(order: readonly string[], onRole: (role: string) => void = () => {}): Promise<void> {
    const roles = [...order, ...new Set(this.#children.map((c) => c.role).filter((r) => !order.includes(r)))]
    for (const role of roles) {
      const group = this.#children.filter((c) => c.role === role)
      if (group.length === 0) continue
      onRole(role)
      await Promise.all(group.map((c) => c.stop(this.#options.stopTimeoutMs(role), { retire: true })))
    }
    await Promise.all(this.#children.map((c) => c.close()))
  }

  /** SIGKILL to every child at once (the second Ctrl-C); resolves once they are gone. */
  async kill(): Promise<void> {
    await Promise.all(this.#children.map((c) => c.kill()))
  }
}
