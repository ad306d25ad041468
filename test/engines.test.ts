import fs from 'node:fs'
import path from 'node:path'
import semver from 'semver'
import { describe, expect, it } from 'vitest'

/** Every installed package whose `engines.node` excludes the running Node (20.x on Fleet's machines). */
function incompatible(dir: string, out: string[] = []): string[] {
  for (const entry of fs.readdirSync(dir)) {
    if (entry.startsWith('.')) continue
    const p = path.join(dir, entry)
    if (entry.startsWith('@')) {
      incompatible(p, out)
      continue
    }
    const manifest = path.join(p, 'package.json')
    if (!fs.existsSync(manifest)) continue
    const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8')) as {
      name: string
      version: string
      engines?: { node?: string }
    }
    const range = pkg.engines?.node
    if (range && !semver.satisfies(process.versions.node, range, { includePrerelease: true })) {
      out.push(`${pkg.name}@${pkg.version} needs node ${range}`)
    }
    if (fs.existsSync(path.join(p, 'node_modules'))) incompatible(path.join(p, 'node_modules'), out)
  }
  return out
}

describe('dependencies', () => {
  it(`all run on this Node (${process.versions.node}) by their own engines field`, () => {
    expect(incompatible(new URL('../node_modules', import.meta.url).pathname)).toEqual([])
  })
})
