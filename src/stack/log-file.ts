/**
 * The log files the supervisor writes in `<data dir>/logs/`: the stores' output, and what a child wrote on
 * stdout or stderr without its logger (a crash's stack trace, plain output): its logger writes its own lines
 * to the same file itself (FLEET_LOG_FILE), so a line per request never passes through the supervisor.
 */
import fs from 'node:fs/promises'

/** The fields of a pino line that the supervisor reads. */
export interface LogEntry {
  level: number
  msg?: string
  err?: { message?: string }
}

/** The entry of a pino JSON line (an object with a numeric level), or undefined for any other line. */
export function parseLogLine(line: string): LogEntry | undefined {
  if (!line.startsWith('{')) return undefined
  try {
    const entry = JSON.parse(line) as Partial<LogEntry> | null
    return typeof entry?.level === 'number' ? (entry as LogEntry) : undefined
  } catch {
    return undefined
  }
}

/**
 * Appends lines to a file by its name, one append per batch: lines that come while a batch is being written
 * go out together next, in order. Each batch opens the file anew, so it follows a rotation (a rename) by
 * itself. Write errors are dropped: a log that cannot be written must not stop the stack.
 */
export class LogAppender {
  readonly #file: string
  #pending: string[] = []
  #writing: Promise<void> | undefined

  constructor(file: string) {
    this.#file = file
  }

  write(line: string): void {
    this.#pending.push(line)
    this.#writing ??= this.#drain()
  }

  /** Resolves once every line written so far is in the file. */
  async flush(): Promise<void> {
    await this.#writing
  }

  async #drain(): Promise<void> {
    while (this.#pending.length > 0) {
      const text = `${this.#pending.join('\n')}\n`
      this.#pending = []
      await fs.appendFile(this.#file, text).catch(() => {})
    }
    this.#writing = undefined
  }
}
