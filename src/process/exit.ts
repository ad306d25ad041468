/** The end of a web server's or a worker's process: its stop on a signal, bounded, then the exit. */
import type { Config } from '../config/index.js'
import { flushLogFiles, type Logger } from '../log.js'

/**
 * Runs until SIGTERM or SIGINT, then stops gracefully; if that takes longer than FLEET_SHUTDOWN_TIMEOUT,
 * exits anyway with code 1.
 */
export function exitOnSignals(stop: () => Promise<void>, config: Config, logger: Logger): void {
  let signalled = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return
    signalled = true
    logger.info({ signal }, 'shutting down')
    const timer = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeout }, 'shutdown timed out; exiting anyway')
      process.exit(1)
    }, config.shutdownTimeout + config.drainDelay)
    timer.unref()
    // The log file's last lines are on disk before the exit: process.exit writes out the logger's buffer
    // synchronously, but cannot wait for a write already under way.
    stop().then(
      async () => {
        await flushLogFiles()
        process.exit(0)
      },
      async (err: unknown) => {
        logger.error({ err }, 'shutdown failed')
        await flushLogFiles()
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}
