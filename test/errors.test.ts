import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { FleetError } from '../src/errors.js'

/** Every FleetError subclass exported by a `src/**\/errors.ts` module. */
async function errorClasses(): Promise<(typeof FleetError)[]> {
  const files = fs
    .readdirSync(new URL('../src', import.meta.url), { recursive: true, encoding: 'utf8' })
    .filter((f) => path.basename(f) === 'errors.ts')
  const out: (typeof FleetError)[] = []
  for (const f of files) {
    const mod = (await import(/* @vite-ignore */ new URL(`../src/${f}`, import.meta.url).href)) as Record<
      string,
      unknown
    >
    for (const v of Object.values(mod)) {
      if (typeof v === 'function' && v.prototype instanceof FleetError) out.push(v as typeof FleetError)
    }
  }
  return out
}

describe('error codes', () => {
  it('are unique, well formed and documented in docs/', async () => {
    const docs = fs
      .readdirSync(new URL('../docs', import.meta.url))
      .filter((f) => f.endsWith('.md'))
      .map((f) => fs.readFileSync(new URL(`../docs/${f}`, import.meta.url), 'utf8'))
      .join('\n')
    const classes = await errorClasses()
    expect(classes.length).toBeGreaterThan(3)
    const seen = new Map<string, string>()
    for (const cls of classes) {
      expect(cls.code, cls.name).toMatch(/^FLEET_E_[A-Z0-9_]+$/)
      expect(seen.get(cls.code), `${cls.name} reuses ${cls.code}`).toBeUndefined()
      seen.set(cls.code, cls.name)
      expect(docs, `${cls.code} (${cls.name}) is not documented in docs/`).toContain(cls.code)
    }
  })
})
