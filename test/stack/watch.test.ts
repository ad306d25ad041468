/** `fleet dev`'s watcher on a real folder: what wakes it, what does not, folders made later, batching. */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Watcher, watchSources } from '../../src/stack/watch.js'
import { waitFor } from '../support/wait.js'

let dir: string
let watcher: Watcher | undefined
let batches: string[][]

/** Resolves with the next batch (or undefined when none came within `ms`). */
async function nextBatch(ms = 2_000): Promise<string[] | undefined> {
  const seen = batches.length
  return waitFor('a batch', async () => batches[seen], ms, 20).catch(() => undefined)
}

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleet-watch-'))
  await fs.mkdir(path.join(dir, 'routes'))
  await fs.mkdir(path.join(dir, 'node_modules/pkg'), { recursive: true })
  await fs.mkdir(path.join(dir, 'data'))
  batches = []
  watcher = watchSources(dir, (files) => batches.push(files.sort()), 50)
})

afterEach(async () => {
  watcher?.close()
  await fs.rm(dir, { recursive: true, force: true })
})

describe('watchSources', () => {
  it('reports saved source files, in subfolders too, as one batch per burst', async () => {
    const batch = nextBatch()
    await fs.writeFile(path.join(dir, 'app.ts'), 'export {}\n')
    await fs.writeFile(path.join(dir, 'routes/notes.ts'), 'export {}\n')
    expect(await batch).toEqual(['app.ts', 'routes/notes.ts'])
  })

  it('ignores node_modules, data and files that are no source', async () => {
    const batch = nextBatch()
    await fs.writeFile(path.join(dir, 'node_modules/pkg/index.js'), '1\n')
    await fs.writeFile(path.join(dir, 'data/postgres.log'), 'x\n')
    await fs.writeFile(path.join(dir, 'notes.txt'), 'x\n')
    // A source file saved after them: its batch is the first, and holds it alone (the events come in order).
    await fs.writeFile(path.join(dir, 'marker.ts'), 'export {}\n')
    expect(await batch).toEqual(['marker.ts'])
    expect(batches).toEqual([['marker.ts']])
  })

  it('watches a folder made after it started', async () => {
    await fs.mkdir(path.join(dir, 'jobs'))
    // The new folder's watch is set up on its event: a probe file saved in it until one is reported.
    const deadline = Date.now() + 5_000
    for (;;) {
      const probe = nextBatch(500)
      await fs.writeFile(path.join(dir, 'jobs/probe.ts'), 'export {}\n')
      if ((await probe)?.includes('jobs/probe.ts')) break
      if (Date.now() > deadline) throw new Error('the new folder was not watched within 5 s')
    }
    batches = []
    const batch = nextBatch()
    await fs.writeFile(path.join(dir, 'jobs/report.ts'), 'export {}\n')
    expect(await batch).toEqual(['jobs/report.ts'])
  })

  it('reports nothing once closed', async () => {
    // A witness on the same folder with the same quiet time: the closed watcher would get the same event in
    // the same turn, and report it on the same timer turn as the witness.
    const seen: string[][] = []
    const witness = watchSources(dir, (files) => seen.push(files), 50)
    try {
      watcher?.close()
      await fs.writeFile(path.join(dir, 'app.ts'), 'export {}\n')
      await waitFor('the witness to report', async () => seen[0], 2_000, 20)
      await new Promise((r) => setImmediate(r))
      expect(seen).toEqual([['app.ts']])
      expect(batches).toEqual([])
    } finally {
      witness.close()
    }
  })
})
