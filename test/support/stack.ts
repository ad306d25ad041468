/** A scratch `fleet up` for the whole-stack tests: its own data folder, free ports, quick turns. */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { scratchUpEnv } from '../../src/stack/scratch.js'

/**
 * A fresh data folder (readable by the embedded PostgreSQL, which runs as `postgres` under root) and the
 * env of a `fleet up` in it: 3 web servers, 1 worker, a small seed, and quicker turns of the LB and the
 * drain to keep the tests short (the behaviour checked is the same). `extra` adds or overrides settings.
 */
export async function quickStack(
  name: string,
  extra: Record<string, string> = {},
): Promise<{ dir: string; env: Record<string, string> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `fleet-${name}-`))
  await fs.chmod(dir, 0o755)
  const env = await scratchUpEnv(dir, {
    FLEET_WEB: '3',
    FLEET_WORKERS: '1',
    FLEET_SEED_PRODUCTS: '200',
    FLEET_SEED_REVIEWS: '500',
    FLEET_SHUTDOWN_TIMEOUT: '5s',
    FLEET_DRAIN_DELAY: '500ms',
    FLEET_LB_DISCOVERY_INTERVAL: '250ms',
    FLEET_LB_HEALTH_INTERVAL: '250ms',
    ...extra,
  })
  return { dir, env }
}
