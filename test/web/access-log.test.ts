/**
 * Access-log lines by FLEET_ACCESS_LOG (errors by default: 4xx, 5xx and slow answers; all; off), written by
 * the web server itself to its FLEET_LOG_FILE, and a route's own `request.log` lines still carrying the
 * request's id (the per-request logger is made on first use).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { flushLogFiles } from '../../src/log.js'
import { createTestApp } from '../support/app.js'

let dir: string
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-access-log-'))
})
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true })
})

/** The JSON lines a web app with `env` writes for a 200 (logging once itself), a 404 and a 400. */
async function linesOf(mode: string | undefined): Promise<Record<string, unknown>[]> {
  const file = path.join(dir, `${mode ?? 'default'}.log`)
  const t = await createTestApp(
    [
      async (app) => {
        app.get('/ok', async (request) => {
          request.log.info({ step: 'inside' }, 'route line')
          return { ok: true }
        })
      },
    ],
    {
      env: {
        FLEET_LOG_LEVEL: 'info',
        FLEET_LOG_FILE: file,
        ...(mode ? { FLEET_ACCESS_LOG: mode } : {}),
      },
    },
  )
  const ids: string[] = []
  for (const url of ['/ok', '/missing', '/ok?x=1']) {
    const res = await t.app.inject({ url, headers: { 'x-request-id': `id-${mode}-${ids.length}` } })
    ids.push(String(res.headers['x-request-id']))
  }
  await t.close()
  await flushLogFiles()
  const text = await fs.readFile(file, 'utf8')
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

const requests = (lines: Record<string, unknown>[]) =>
  lines.filter((l) => l.msg === 'request').map((l) => [l.reqId, l.url, l.status])

describe('access log', () => {
  it('by default logs the errors only; a route line carries its request id', async () => {
    const lines = await linesOf(undefined)
    expect(requests(lines)).toEqual([['id-undefined-1', '/missing', 404]])
    const route = lines.filter((l) => l.msg === 'route line')
    expect(route.map((l) => [l.reqId, l.step])).toEqual([
      ['id-undefined-0', 'inside'],
      ['id-undefined-2', 'inside'],
    ])
  })

  it('all logs every answer, off none', async () => {
    expect(requests(await linesOf('all'))).toEqual([
      ['id-all-0', '/ok', 200],
      ['id-all-1', '/missing', 404],
      ['id-all-2', '/ok?x=1', 200],
    ])
    const off = await linesOf('off')
    expect(requests(off)).toEqual([])
    expect(off.filter((l) => l.msg === 'route line')).toHaveLength(2)
  })
})
