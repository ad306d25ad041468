/**
 * Starts the real services the tests talk to, once per run: an embedded PostgreSQL and a redis-server on
 * free ports, in a temporary folder. Set FLEET_TEST_DATABASE_URL / FLEET_TEST_REDIS_URL to use running ones
 * instead (faster locally). Each test then isolates itself with its own schema and key prefix.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { TestProject } from 'vitest/node'
import { freePort } from '../../src/stack/ports.js'
import { EmbeddedPostgres } from '../../src/stack/postgres.js'
import { LocalRedis } from '../../src/stack/redis.js'

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string
    redisUrl: string
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-test-'))
  await fs.chmod(dir, 0o755)
  const stops: (() => Promise<void>)[] = []

  let databaseUrl = process.env.FLEET_TEST_DATABASE_URL
  if (!databaseUrl) {
    const pg = new EmbeddedPostgres({
      dataDir: path.join(dir, 'postgres'),
      port: await freePort(),
      database: 'fleet_test',
    })
    await pg.start()
    stops.push(() => pg.stop())
    databaseUrl = pg.url
  }
  let redisUrl = process.env.FLEET_TEST_REDIS_URL
  if (!redisUrl) {
    const redis = new LocalRedis({ role: 'store', dataDir: path.join(dir, 'redis'), port: await freePort() })
    await redis.start()
    stops.push(() => redis.stop())
    redisUrl = redis.url
  }
  project.provide('databaseUrl', databaseUrl)
  project.provide('redisUrl', redisUrl)

  return async () => {
    for (const stop of stops.reverse()) await stop()
    await fs.rm(dir, { recursive: true, force: true })
  }
}
