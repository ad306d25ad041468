/**
 * `npm run bench [-- NAME ...]`: runs every benchmark scenario (bench/<name>.ts), or the named ones, one after
 * the other (they would disturb each other's timings if run at once). Each prints its own figures beside its
 * anchors; this runner only sequences them and reports which failed.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = path.dirname(fileURLToPath(import.meta.url))
const all = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.replace(/\.ts$/, ''))
  .sort()
const wanted = process.argv.slice(2)
const unknown = wanted.filter((w) => !all.includes(w))
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; there are: ${all.join(', ')}\n`)
  process.exit(2)
}
const failed: string[] = []
for (const name of wanted.length > 0 ? wanted : all) {
  process.stdout.write(`\n##### bench/${name}.ts\n`)
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(dir, `${name}.ts`)], {
    stdio: 'inherit',
  })
  if (r.status !== 0) failed.push(name)
}
if (failed.length > 0) {
  process.stderr.write(`\nfailed: ${failed.join(', ')}\n`)
  process.exit(1)
}
