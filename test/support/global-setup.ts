/**
 * Starts the real services the tests talk to, once per run: an embedded PostgreSQL and a redis-server on
 * free ports, in a temporary folder. Set FLEET_TEST_DATABASE_URL / FLEET_TEST_REDIS_URL to use running ones
 * instead (faster locally). Each test then isolates itself with its own schema and key prefix.
 */
import type { TestProject } from 'vitest/node'
import { startScratchServices } from '../../src/stack/scratch.js'

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string
    redisUrl: string
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const services = await startScratchServices({
    name: 'test',
    databaseUrl: process.env.FLEET_TEST_DATABASE_URL,
    redisUrl: process.env.FLEET_TEST_REDIS_URL,
  })
  project.provide('databaseUrl', services.databaseUrl)
  project.provide('redisUrl', services.redisUrl)
  return () => services.stop()
}
