/** A rolling restart of the web servers (`fleet restart web`), as an operator deploys. */
import { RECOVER_MS } from '../options.js'
import { until } from '../wait.js'
import type { Fault } from './fault.js'

export const rollingRestart: Fault = {
  name: 'rolling restart',
  what: '`fleet restart web`',
  async inject({ stack }) {
    const stdout = await stack.fleet(['restart', 'web'], 120_000)
    const s = await until(() => stack.whole(), RECOVER_MS, 200)
    return { wholeAt: s ? Date.now() : undefined, notes: [stdout.trim().split('\n').pop() ?? ''] }
  },
}
