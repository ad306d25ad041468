/**
 * Structured JSON logs (pino) with the process role and instance id on every line: on stdout (12-factor), or,
 * with FLEET_LOG_FILE, appended to that file by the process itself (what `fleet up` gives each child), so
 * that no other process has to relay a line per request.
 */
import fs from 'node:fs'
import path from 'node:path'
import { type Logger, multistream, pino, destination as pinoDestination } from 'pino'
import { ConfigError } from './config/errors.js'
import type { Config } from './config/index.js'

export type { Logger }

/** A log file's buffer is written once it holds this much: one write(2) per ~16 KB, not one per line. */
const FILE_BUFFER_BYTES = 16_384
/** Longest a line waits in that buffer when traffic is low, so that `tail -f` stays current. */
const FILE_FLUSH_MS = 1_000

type Destination = ReturnType<typeof pinoDestination>

/** The log files this process writes, by absolute path: the loggers of one file share its destination. */
const files = new Map<string, Destination>()
let stderr: Destination | undefined

/**
 * A logger at the configured level. Unset `logFile`: JSON lines on stdout. Set: JSON lines appended to that
 * file through an asynchronous buffer (flushed at exit, also after a crash), and the lines at warn and above
 * on stderr too (what `fleet up` echoes). A process with a log file reopens it on SIGHUP.
 * Throws FLEET_E_CONFIG_INVALID naming FLEET_LOG_FILE when the file cannot be opened.
 */
export function createLogger(
  config: Pick<Config, 'logLevel'> & Partial<Pick<Config, 'logFile'>>,
  bindings: Record<string, unknown> = {},
): Logger {
  const options = { level: config.logLevel, base: { pid: process.pid, ...bindings } }
  if (!config.logFile) return pino(options)
  stderr ??= pinoDestination({ fd: 2, sync: true })
  return pino(
    options,
    multistream([
      { level: 'trace', stream: openLogFile(config.logFile) },
      { level: 'warn', stream: stderr },
    ]),
  )
}

function openLogFile(file: string): Destination {
  const absolute = path.resolve(file)
  const open = files.get(absolute)
  if (open) return open
  // Opened once here, synchronously, so that a path that cannot be written fails the start with its name
  // (the destination opens the file again asynchronously).
  try {
    fs.mkdirSync(path.dirname(absolute), { recursive: true })
    fs.closeSync(fs.openSync(absolute, 'a'))
  } catch (err) {
    throw new ConfigError('FLEET_LOG_FILE', file, (err as Error).message, 'environment', { cause: err })
  }
  // Not sync: pino registers it to be flushed synchronously on 'exit' (process.exit, the end of an
  // uncaught exception) and asynchronously on 'beforeExit'.
  const destination = pinoDestination({
    dest: absolute,
    sync: false,
    minLength: FILE_BUFFER_BYTES,
    maxWrite: 4 * FILE_BUFFER_BYTES, // sonic-boom wants it above minLength (its default is 16 KB)
    periodicFlush: FILE_FLUSH_MS,
  })
  if (files.size === 0) process.on('SIGHUP', reopenLogFiles)
  files.set(absolute, destination)
  return destination
}

/** Reopens every log file this process writes by its name (after log rotation moved it away): SIGHUP. */
export function reopenLogFiles(): void {
  for (const destination of files.values()) {
    try {
      destination.reopen()
    } catch {
      // closed already: the process is exiting
    }
  }
}

/** Resolves once every log line buffered so far is written to its file (before a deliberate exit). */
export async function flushLogFiles(): Promise<void> {
  await Promise.all([...files.values()].map((d) => new Promise<void>((resolve) => d.flush(() => resolve()))))
}
