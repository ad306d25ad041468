/**
 * Which answers get an access-log line (`FLEET_ACCESS_LOG`). Each process writes its own lines (FLEET_LOG_FILE
 * or stdout, through pino's buffered destination); `errors` keeps the lines worth reading and drops the cost
 * of a line per cached hit, the way HAProxy's `option dontlog-normal` does.
 */
import type { Config } from '../config/index.js'

/** An answer slower than this is logged under `errors` too, whatever its status. */
export const SLOW_MS = 1_000

/** The filter of a mode: undefined when nothing is logged (no hook is installed at all). */
export function accessLogFilter(
  mode: Config['accessLog'],
): ((status: number, ms: number) => boolean) | undefined {
  switch (mode) {
    case 'all':
      return () => true
    case 'errors':
      return (status, ms) => status >= 400 || ms >= SLOW_MS
    case 'off':
      return undefined
  }
}
