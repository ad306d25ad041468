/**
 * deploy/ as the test bed reads it: the templates with their {{NAME}} placeholders filled per host (a
 * placeholder left unfilled is an error, never passed on), and a systemd unit turned into the command,
 * environment and folder systemd would start it with: ExecStart split as systemd splits it, every
 * EnvironmentFile= read in order (a leading `-`: optional), Environment= lines, WorkingDirectory=, Nice=,
 * RestartSec=. Other directives (User=, limits, capabilities) are not applied: the bed runs as root.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('..', import.meta.url))
export const deployDir = path.join(root, 'deploy')

/** What systemd gives every service besides its own environment (no User= applied). */
export const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Fills every {{NAME}} of `text` from `values`; throws naming the placeholders it has no value for. */
export function render(text: string, values: Record<string, string>, what = 'template'): string {
  const missing = new Set<string>()
  const out = text.replace(/\{\{([A-Z_]+)\}\}/g, (_, name: string) => {
    const v = values[name]
    if (v === undefined) missing.add(name)
    return v ?? ''
  })
  if (missing.size > 0) throw new Error(`${what}: no value for {{${[...missing].join('}}, {{')}}}`)
  return out
}

/** Reads deploy/<file> and fills it. */
export async function renderDeployFile(file: string, values: Record<string, string>): Promise<string> {
  return render(await fs.readFile(path.join(deployDir, file), 'utf8'), values, `deploy/${file}`)
}

/** The [Service] part of a unit that the bed applies. */
export interface UnitService {
  execStart: string[]
  environmentFiles: { path: string; optional: boolean }[]
  environment: Record<string, string>
  workingDirectory?: string
  nice?: number
  restartSec: number
}

/** Splits a command line as systemd does: whitespace, "double" and 'single' quotes, backslash escapes. */
export function splitCommand(line: string): string[] {
  const words: string[] = []
  let cur = ''
  let quote: string | undefined
  let inWord = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string
    if (c === '\\' && i + 1 < line.length) {
      cur += line[++i]
      inWord = true
    } else if (quote) {
      if (c === quote) quote = undefined
      else cur += c
    } else if (c === '"' || c === "'") {
      quote = c
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur)
      cur = ''
      inWord = false
    } else {
      cur += c
      inWord = true
    }
  }
  if (quote) throw new Error(`unterminated quote in ${line}`)
  if (inWord) words.push(cur)
  return words
}

/** The [Service] directives of unit text the bed applies (throws on none or several ExecStart=). */
export function parseUnit(text: string): UnitService {
  const service: UnitService = { execStart: [], environmentFiles: [], environment: {}, restartSec: 0.1 }
  let section = ''
  const execStarts: string[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#') || line.startsWith(';')) continue
    const head = /^\[(.+)\]$/.exec(line)
    if (head) {
      section = head[1] as string
      continue
    }
    if (section !== 'Service') continue
    const eq = line.indexOf('=')
    const key = line.slice(0, eq).trim()
    const value = line.slice(eq + 1).trim()
    if (key === 'ExecStart') execStarts.push(value)
    else if (key === 'EnvironmentFile')
      service.environmentFiles.push({ path: value.replace(/^-/, ''), optional: value.startsWith('-') })
    else if (key === 'Environment')
      for (const word of splitCommand(value)) {
        const i = word.indexOf('=')
        service.environment[word.slice(0, i)] = word.slice(i + 1)
      }
    else if (key === 'WorkingDirectory') service.workingDirectory = value.replace(/^-/, '')
    else if (key === 'Nice') service.nice = Number(value)
    else if (key === 'RestartSec') service.restartSec = Number(value.replace(/s$/, ''))
  }
  if (execStarts.length !== 1)
    throw new Error(`a unit needs exactly one ExecStart=, found ${execStarts.length}`)
  // Prefixes systemd allows before the path (ignore failure, full privileges, ...), none of which the bed needs.
  service.execStart = splitCommand((execStarts[0] as string).replace(/^[-@:+!]+/, ''))
  return service
}

/** KEY=VALUE lines of an environment file as systemd reads them (comments, blank lines, quoted values). */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#') || line.startsWith(';')) continue
    const eq = line.indexOf('=')
    if (eq <= 0) throw new Error(`not KEY=VALUE in an environment file: ${line}`)
    let value = line.slice(eq + 1).trim()
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1)
    env[line.slice(0, eq).trim()] = value
  }
  return env
}

/** What systemd starts for a unit: the command, the exact environment, the folder. */
export interface StartSpec {
  command: string
  args: string[]
  env: Record<string, string>
  cwd?: string
  nice?: number
  restartSec: number
}

/** The start of a rendered unit: its environment files read from disk in order, then Environment=. */
export async function startSpecOf(unitText: string): Promise<StartSpec> {
  const unit = parseUnit(unitText)
  const env: Record<string, string> = { PATH: SYSTEMD_PATH }
  for (const f of unit.environmentFiles) {
    const text = await fs.readFile(f.path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (f.optional && err.code === 'ENOENT') return ''
      throw err
    })
    Object.assign(env, parseEnvFile(text))
  }
  Object.assign(env, unit.environment)
  const [command, ...args] = unit.execStart
  return {
    command: command as string,
    args,
    env,
    cwd: unit.workingDirectory,
    nice: unit.nice,
    restartSec: unit.restartSec,
  }
}
