/**
 * SIGKILL of `fleet up` itself: every process it started must go by itself (counted: a target), and a new
 * `fleet up` on the same folder and ports must start cleanly.
 */
import { alive, processTree } from '../../test/support/processes.js'
import { until } from '../wait.js'
import type { Fault } from './fault.js'

export const killUp: Fault = {
  name: 'SIGKILL fleet up',
  what: 'kill -9 the supervisor, then `fleet up` again',
  async inject({ stack, client, measures }) {
    const before = (await stack.status()).rows.filter((r) => r.pid && r.name !== 'supervisor')
    const tree = before.flatMap((r) => processTree(r.pid as number))
    stack.up?.proc.kill('SIGKILL')
    const killedAt = Date.now()
    await until(async () => (tree.some(alive) ? undefined : true), 20_000, 100)
    const left = tree.filter(alive)
    measures.leftAfterKill = left.length
    const goneMs = Date.now() - killedAt
    for (const p of left) process.kill(p, 'SIGKILL')
    stack.start()
    const s = await until(
      async () =>
        (await client.call(undefined, 'GET', '/api/categories')).status === 200 ? stack.whole() : undefined,
      90_000,
      200,
    )
    return {
      wholeAt: s ? Date.now() : undefined,
      notes: [
        `${left.length} of ${tree.length} processes left ${goneMs} ms after the kill`,
        `a new fleet up answered after ${((Date.now() - killedAt) / 1000).toFixed(1)} s`,
      ],
    }
  },
}
