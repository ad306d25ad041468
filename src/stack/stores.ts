/** Asking a running `fleet up` for its stores (the operator commands beside it, and app tests). */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { requestStatus } from './control.js'
import type { StatusReport } from './status.js'

/** The stores of the `fleet up` running on `dataDir`; undefined when none runs there (or it did not answer). */
export async function runningStackStores(dataDir: string): Promise<StatusReport['stores']> {
  const socket = path.join(path.resolve(dataDir), 'fleet.sock')
  if (!existsSync(socket)) return undefined
  return requestStatus(socket, 1_000).then(
    (report) => report.stores,
    () => undefined,
  )
}
