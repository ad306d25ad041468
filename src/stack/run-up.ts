/**
 * The process side of `fleet up`: runs a Stack until a signal, and turns signals into the ordered stop (the
 * first), a forced one (a second SIGINT or SIGTERM) or an immediate exit (a third).
 */
import type { Config } from '../config/index.js'
import { Stack, type StackApp, type StackOptions } from './up.js'

/**
 * Runs `fleet up` until a signal stops it; resolves with the exit code: 0 after a clean stop, 130 after a
 * forced one.
 * SIGINT / SIGTERM / SIGHUP: ordered shutdown; a second SIGINT or SIGTERM forces; a third exits at once.
 */
export async function runUp(config: Config, app: StackApp, options: StackOptions = {}): Promise<number> {
  // When the terminal goes away (SIGHUP), writes to it fail: the shutdown must go on regardless.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {})
  const stack = new Stack(config, app, process.stdout, options)
  let signals = 0
  const onSignal = (signal: NodeJS.Signals) => {
    // A closed terminal (SIGHUP) asks for the ordered stop, and never forces one that already runs.
    if (signal === 'SIGHUP' && signals > 0) return
    signals++
    if (signals === 1) {
      process.stdout.write(`\n${signal}: stopping the stack in order (press Ctrl-C again to force)\n`)
      void stack.shutdown()
    } else if (signals === 2) {
      process.stdout.write(`\n${signal} again: forcing (SIGKILL to every child)\n`)
      stack.force()
    } else {
      process.exit(130)
    }
  }
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal)
  let failure: unknown
  const started = stack.start().catch((err: unknown) => {
    // A failure caused by a stop asked for during the start is no failure.
    if (!stack.stopping) failure = err
    void stack.shutdown()
  })
  // Runs until a signal (or a failed start) starts the shutdown.
  await stack.stopRequested
  await stack.shutdown()
  await started
  await stack.lateStops()
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, onSignal)
  if (failure) throw failure
  return stack.forced ? 130 : 0
}
