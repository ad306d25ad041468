/**
 * Error codes (STYLE 3, as fastify's FST_ERR_* test): docs/errors.md and the code agree both ways. Every
 * `FLEET_E_*` code that a `.ts` file of src/ or apps/ names (in a class, a literal, a comment) has a row in
 * docs/errors.md with what it means and what to do; every row's code is raised somewhere (a string literal in
 * src/ or apps/); every error class has a well-formed code of its own.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { FleetError } from '../src/errors.js'

const root = fileURLToPath(new URL('..', import.meta.url))
/** A whole code: not a prefix such as `FLEET_E_CONFIG_` (cli.ts) nor a pattern such as `FLEET_E_*`. */
const CODE = /(?<![A-Z0-9_])FLEET_E_[A-Z0-9]+(?:_[A-Z0-9]+)*(?![A-Z0-9_])/g
/** A code as a string of its own ('...' or "..."): what raises or answers with it. */
const LITERAL = /(['"])(FLEET_E_[A-Z0-9]+(?:_[A-Z0-9]+)*)\1/g

/**
 * Error class names that two modules may share, each with its own code. None now: the LB's refusals are
 * MalformedRequestError and RequestBodyTooLargeError, the web server's BadRequestError and BodyTooLargeError.
 */
const KNOWN_SHARED_NAMES: string[] = []

/** The `.ts` files of src/ and apps/, relative to the repository, with their text. */
function sources(): { file: string; text: string }[] {
  return ['src', 'apps'].flatMap((dir) =>
    fs
      .readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => path.join(dir, f))
      .map((file) => ({ file, text: fs.readFileSync(path.join(root, file), 'utf8') })),
  )
}

/** The rows of docs/errors.md's tables: [code, status, when, what to do], in the page's order. */
function documented(): string[][] {
  const text = fs.readFileSync(path.join(root, 'docs/errors.md'), 'utf8')
  return text
    .split('\n')
    .map((line) => /^\| `(FLEET_E_[A-Z0-9_]+)` \|(.*)\|$/.exec(line))
    .filter((m) => m !== null)
    .map((m) => [m[1], ...m[2].split(' | ').map((c) => c.trim())])
}

/** Every FleetError subclass exported by a module of src/ or apps/ that declares one. */
async function errorClasses(files: { file: string; text: string }[]): Promise<(typeof FleetError)[]> {
  const out = new Set<typeof FleetError>()
  for (const { file, text } of files) {
    if (!/extends FleetError\b/.test(text)) continue
    const url = new URL(file.split(path.sep).join('/'), new URL('..', import.meta.url)).href
    const mod = (await import(/* @vite-ignore */ url)) as Record<string, unknown>
    for (const v of Object.values(mod)) {
      if (typeof v === 'function' && v.prototype instanceof FleetError) out.add(v as typeof FleetError)
    }
  }
  return [...out]
}

describe('error codes', () => {
  const files = sources()
  const rows = documented()
  const docs = new Set(rows.map(([code]) => code))

  it('docs/errors.md lists every code named in src/ and apps/ once, with what it means and what to do', () => {
    expect(rows.length).toBeGreaterThan(50)
    expect(docs.size, 'a code has two rows in docs/errors.md').toBe(rows.length)
    for (const { file, text } of files) {
      for (const [code] of text.matchAll(CODE)) {
        expect(docs.has(code), `${code} (${file}) has no row in docs/errors.md`).toBe(true)
      }
    }
    for (const [code, status, when, todo] of rows) {
      expect(status, `${code}: status`).toBeTruthy()
      expect(when, `${code}: when`).toBeTruthy()
      expect(todo, `${code}: what to do`).toBeTruthy()
    }
  })

  it('every code docs/errors.md lists is raised in src/ or apps/', () => {
    const raised = new Set(files.flatMap(({ text }) => [...text.matchAll(LITERAL)].map((m) => m[2])))
    for (const code of docs) {
      expect(raised.has(code), `${code} is in docs/errors.md but no code raises it: remove its row`).toBe(
        true,
      )
    }
  })

  it('each error class has a well-formed code of its own', async () => {
    const classes = await errorClasses(files)
    expect(classes.length).toBeGreaterThan(50)
    const byCode = new Map<string, string>()
    const byName = new Map<string, string[]>()
    for (const cls of classes) {
      expect(cls.code, cls.name).toMatch(/^FLEET_E_[A-Z0-9]+(?:_[A-Z0-9]+)*$/)
      expect(byCode.get(cls.code), `${cls.name} reuses ${cls.code}`).toBeUndefined()
      byCode.set(cls.code, cls.name)
      byName.set(cls.name, [...(byName.get(cls.name) ?? []), cls.code])
    }
    // One name, one class: an import of the wrong module would answer with the other code.
    const shared = [...byName]
      .filter(([, codes]) => codes.length > 1)
      .map(([name, codes]) => `${name}: ${codes.sort().join(', ')}`)
    expect(shared.sort()).toEqual(KNOWN_SHARED_NAMES)
  })
})
