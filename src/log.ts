/** Structured JSON logs (pino) with the process role and instance id on every line. */
import { type Logger, pino } from 'pino'
import type { Config } from './config/index.js'

export type { Logger }

/** A logger that writes JSON lines to stdout at the configured level. */
export function createLogger(
  config: Pick<Config, 'logLevel'>,
  bindings: Record<string, unknown> = {},
): Logger {
  return pino({ level: config.logLevel, base: { pid: process.pid, ...bindings } })
}
