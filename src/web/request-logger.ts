/**
 * `request.log` made on first use. Fastify gives every request a child of the server's logger bound to its
 * id; pino builds that child (bindings serialized, level copied) whether or not the request logs anything,
 * which is a measurable share of a cached hit that logs nothing. This logger makes the pino child the first
 * time a method is called, then hands every call to it.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Bindings, ChildLoggerOptions } from 'pino'

type Method = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

function call(logger: FastifyBaseLogger, method: Method, args: unknown[]): void {
  ;(logger[method] as (...a: unknown[]) => void).apply(logger, args)
}

/** Methods on the prototype, not per-instance closures: a request that logs nothing allocates one object. */
class LazyChild {
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions
  #child: FastifyBaseLogger | undefined

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  get #real(): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options)
    return this.#child
  }

  get level(): string {
    return this.#child?.level ?? this.#options.level ?? this.#parent.level
  }

  set level(level: string) {
    this.#real.level = level
  }

  fatal(...args: unknown[]): void {
    call(this.#real, 'fatal', args)
  }
  error(...args: unknown[]): void {
    call(this.#real, 'error', args)
  }
  warn(...args: unknown[]): void {
    call(this.#real, 'warn', args)
  }
  info(...args: unknown[]): void {
    call(this.#real, 'info', args)
  }
  debug(...args: unknown[]): void {
    call(this.#real, 'debug', args)
  }
  trace(...args: unknown[]): void {
    call(this.#real, 'trace', args)
  }
  silent(...args: unknown[]): void {
    call(this.#real, 'silent', args)
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real.child(bindings, options)
  }
}

/** Fastify's `childLoggerFactory`: a request logger whose pino child is made when it first logs. */
export function lazyRequestLogger(
  parent: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  return new LazyChild(parent, bindings, options) as unknown as FastifyBaseLogger
}
