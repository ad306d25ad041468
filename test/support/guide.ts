/**
 * docs/guide.md as its test reads it: the fenced code blocks, an HTTP example (a request, then the answer it
 * gets), a console session (`$ command` lines and what each prints), shell words; and how a shown answer is
 * compared with the real one, `…` standing for what varies. Pure functions: test/guide.test.ts runs them.
 */
import { STATUS_CODES } from 'node:http'
import { expect } from 'vitest'

export interface Block {
  /** The info string after the opening fence: `ts`, `http`, `sh`, `console`. */
  lang: string
  text: string
  /** Line of the opening fence in the Markdown file (1-based). */
  line: number
}

/** The fenced code blocks of a Markdown text, in order. */
export function codeBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n')
  const out: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i])
    if (!open) continue
    const line = i + 1
    const body: string[] = []
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i])
    if (i >= lines.length) throw new Error(`line ${line}: a code block is never closed`)
    out.push({ lang: open[1], text: body.join('\n'), line })
  }
  return out
}

/** The file a TypeScript block is: its first line is `// file: <name>.ts`. */
export function fileOf(block: Block): string | undefined {
  return /^\/\/ file: ([\w.-]+\.ts)$/.exec(block.text.split('\n')[0])?.[1]
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** The whole of `shown`, where `…` stands for any text (runs of spaces for any run of spaces with `loose`). */
export function wildcard(shown: string, options: { loose?: boolean } = {}): RegExp {
  let src = shown.split('…').map(escapeRegExp).join('.*')
  if (options.loose) src = src.replace(/ +/g, '\\s+')
  return new RegExp(`^${src}$`, 's')
}

/** What a shown JSON value asks of the real one: a subset of each object; a string with `…` is a pattern. */
export function jsonPattern(v: unknown): unknown {
  if (typeof v === 'string') return v.includes('…') ? expect.stringMatching(wildcard(v)) : v
  if (Array.isArray(v)) return v.map(jsonPattern)
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonPattern(x)]))
  return v
}

interface Message {
  start: string
  headers: [string, string][]
  body: string
}

function message(lines: string[], what: string): Message {
  const blank = lines.findIndex((l) => l.trim() === '')
  const head = blank < 0 ? lines : lines.slice(0, blank)
  const headers = head.slice(1).map((l): [string, string] => {
    const m = /^([A-Za-z0-9-]+): (.*)$/.exec(l)
    if (!m) throw new Error(`${what}: "${l}" is not a header line (Name: value)`)
    return [m[1], m[2]]
  })
  return {
    start: head[0] ?? '',
    headers,
    body:
      blank < 0
        ? ''
        : lines
            .slice(blank + 1)
            .join('\n')
            .trim(),
  }
}

export interface HttpExample {
  method: string
  url: string
  headers: Record<string, string>
  body: string
  status: number
  answerHeaders: [string, string][]
  answerBody: string
}

/**
 * An ```http block: a request line, headers, a blank line and a body; then the answer from its status line
 * (`HTTP/1.1 201 Created`): the headers and body it shows.
 */
export function parseHttp(text: string): HttpExample {
  const lines = text.split('\n')
  const at = lines.findIndex((l) => l.startsWith('HTTP/1.1 '))
  if (at < 0) throw new Error('an HTTP example needs its answer, from a line `HTTP/1.1 <status> <reason>`')
  const request = message(lines.slice(0, at), 'request')
  const answer = message(lines.slice(at), 'answer')
  const requestLine = /^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\/\S*)$/.exec(request.start)
  if (!requestLine) throw new Error(`"${request.start}" is not a request line (METHOD /path)`)
  const status = /^HTTP\/1\.1 (\d{3}) (.+)$/.exec(answer.start)
  if (!status) throw new Error(`"${answer.start}" is not a status line (HTTP/1.1 <status> <reason>)`)
  const code = Number(status[1])
  if (STATUS_CODES[code] !== status[2])
    throw new Error(`status ${code} is "${STATUS_CODES[code]}", not "${status[2]}"`)
  return {
    method: requestLine[1],
    url: requestLine[2],
    headers: Object.fromEntries(request.headers.map(([k, v]) => [k.toLowerCase(), v])),
    body: request.body,
    status: code,
    answerHeaders: answer.headers,
    answerBody: answer.body,
  }
}

/** The events of a text/event-stream body, each as its fields (comments left out). */
export function sseEvents(text: string): Record<string, string>[] {
  return text
    .split(/\n\n+/)
    .map((chunk) => chunk.split('\n').filter((l) => l !== '' && !l.startsWith(':')))
    .filter((fields) => fields.length > 0)
    .map((fields) =>
      Object.fromEntries(
        fields.map((l) => {
          const i = l.indexOf(': ')
          return i < 0 ? [l, ''] : [l.slice(0, i), l.slice(i + 2)]
        }),
      ),
    )
}

/** Asserts that a stream holds the shown events, in order: `data` as JSON subsets, other fields as patterns. */
export function expectEvents(actual: string, shown: string): void {
  const got = sseEvents(actual)
  const want = sseEvents(shown)
  expect(got.length, `events:\n${actual}`).toBe(want.length)
  want.forEach((fields, i) => {
    for (const [k, v] of Object.entries(fields)) {
      if (k === 'data')
        expect(JSON.parse(got[i].data ?? 'null')).toMatchObject(jsonPattern(JSON.parse(v)) as object)
      else expect(got[i][k] ?? '', `event ${i} field ${k}:\n${actual}`).toMatch(wildcard(v))
    }
  })
}

/** One browser's cookies across requests: set by Set-Cookie, dropped when cleared or expired. */
export class CookieJar {
  readonly #cookies = new Map<string, string>()

  /** The Cookie header to send, if any. */
  get header(): string | undefined {
    if (this.#cookies.size === 0) return undefined
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  /** Takes the cookies of an answer (as light-my-request parses them). */
  take(cookies: readonly { name: string; value: string; maxAge?: number; expires?: Date }[]): void {
    for (const c of cookies) {
      const gone =
        c.value === '' || c.maxAge === 0 || (c.expires !== undefined && c.expires.getTime() < Date.now())
      if (gone) this.#cookies.delete(c.name)
      else this.#cookies.set(c.name, c.value)
    }
  }
}

/** A shell command line as words, with its leading `NAME=value` assignments apart; quotes and `#` comments. */
export function shellWords(line: string): { env: Record<string, string>; words: string[] } {
  const words: string[] = []
  let word: string | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1)
      if (end < 0) throw new Error(`unclosed ${c} in: ${line}`)
      word = (word ?? '') + line.slice(i + 1, end)
      i = end
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word)
      word = undefined
    } else if (c === '#' && word === undefined) {
      break
    } else {
      word = (word ?? '') + c
    }
  }
  if (word !== undefined) words.push(word)
  const env: Record<string, string> = {}
  while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(words[0])) {
    const [name, ...value] = words.shift()!.split('=')
    env[name] = value.join('=')
  }
  return { env, words }
}

/** The CLI arguments of `npm run fleet -- <args>` or `npx fleet <args>`; undefined for any other command. */
export function fleetArgs(words: readonly string[]): string[] | undefined {
  if (words[0] === 'npm' && words[1] === 'run' && words[2] === 'fleet' && words[3] === '--')
    return words.slice(4)
  if (words[0] === 'npx' && words[1] === 'fleet') return words.slice(2)
  return undefined
}

/** A command's long options: `--name value`, `--name=value`, or `--name` alone (true). */
export function longOptions(args: readonly string[]): Map<string, string | true> {
  const out = new Map<string, string | true>()
  // A command's arguments (`init ../guestbook`) come before its options.
  let i = 0
  while (i < args.length && !args[i].startsWith('-')) i++
  for (; i < args.length; i++) {
    const m = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(args[i])
    if (!m) throw new Error(`"${args[i]}" is not a long option (--name value)`)
    if (m[2] !== undefined) out.set(m[1], m[2])
    else if (i + 1 < args.length && !args[i + 1].startsWith('--')) out.set(m[1], args[++i])
    else out.set(m[1], true)
  }
  return out
}

export interface ConsoleStep {
  command: string
  /** The lines the guide shows it printing. */
  output: string[]
}

/** A ```console block: `$ command` lines, each followed by the lines it prints. */
export function consoleSteps(text: string): ConsoleStep[] {
  const steps: ConsoleStep[] = []
  for (const line of text.split('\n')) {
    if (line.startsWith('$ ')) steps.push({ command: line.slice(2), output: [] })
    else if (steps.length === 0) throw new Error(`a console block starts with a "$ " command, not: ${line}`)
    else if (line.trim() !== '') steps.at(-1)!.output.push(line.trim())
  }
  return steps
}
