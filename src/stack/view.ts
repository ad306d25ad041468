/**
 * What `fleet up` shows in its terminal. On a TTY: the status table, redrawn every second in place, with
 * messages (progress, state changes, children's warnings and errors) printed above it. Otherwise: one
 * plain line per message and per state change, nothing redrawn, so logs stay readable in a file or CI.
 */
import type { ChildSnapshot, ChildState } from './child.js'
import { parseLogLine } from './log-file.js'
import { renderReport, type StatusReport, stateCell } from './status.js'

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
}

/**
 * The line to echo for one line a child wrote, or undefined to keep it in the log file only: pino JSON lines
 * at warn or above, and every line that is not JSON (a crash's stack trace, a program's own output). Node's
 * own warnings (`(node:1234) [DEP0040] ...`) are shown once for the whole stack when `seen` is given.
 */
export function echoLine(name: string, line: string, seen?: Set<string>): string | undefined {
  if (seen) {
    const warning = /^\(node:\d+\) (.*)$/.exec(line)
    const key = warning ? warning[1] : line.startsWith('(Use `node --trace-') ? line : undefined
    if (key !== undefined) {
      if (seen.has(key)) return undefined
      seen.add(key)
    }
  }
  const entry = parseLogLine(line)
  if (!entry) return `${name} | ${line}`
  if (entry.level < 40) return undefined
  const err = entry.err?.message ? `: ${entry.err.message}` : ''
  return `${name} | ${LEVELS[entry.level] ?? entry.level} ${entry.msg ?? ''}${err}`
}

export class StatusView {
  readonly #out: NodeJS.WriteStream
  readonly #live: boolean
  readonly #report: () => StatusReport
  #drawn = 0
  #timer: NodeJS.Timeout | undefined

  constructor(out: NodeJS.WriteStream, report: () => StatusReport, live = out.isTTY === true) {
    this.#out = out
    this.#report = report
    this.#live = live
  }

  get live(): boolean {
    return this.#live
  }

  /** Prints a line (above the table on a TTY). */
  message(text: string): void {
    this.#clear()
    this.#out.write(`${text}\n`)
    this.#draw()
  }

  /** A child changed state: a line, or a redraw while the live table is up (a crash gets a line too). */
  stateChanged(child: ChildSnapshot, previous: ChildState): void {
    if (this.#timer) {
      if (child.state === 'crashed') this.message(`${child.name} ${stateCell(child, Date.now())}`)
      else this.#redraw()
      return
    }
    const pid = child.pid === undefined ? '' : ` pid ${child.pid}`
    const port = child.port === undefined ? '' : ` port ${child.port}`
    const time = new Date().toISOString().slice(11, 19)
    this.#out.write(`${time} ${child.name} ${previous} -> ${stateCell(child, Date.now())}${pid}${port}\n`)
  }

  /** Starts redrawing the table every second (TTY only). */
  start(): void {
    if (!this.#live || this.#timer) return
    this.#timer = setInterval(() => this.#redraw(), 1_000)
    this.#timer.unref()
    this.#draw()
  }

  /** Stops redrawing; the last table stays on screen. */
  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#drawn = 0
  }

  #redraw(): void {
    if (!this.#timer) return
    this.#clear()
    this.#draw()
  }

  #clear(): void {
    if (this.#drawn === 0) return
    this.#out.write(`\x1b[${this.#drawn}A\r\x1b[J`)
    this.#drawn = 0
  }

  #draw(): void {
    if (!this.#timer) return
    const text = `\n${renderReport(this.#report())}\n`
    this.#out.write(text)
    this.#drawn = text.split('\n').length - 1
  }
}
