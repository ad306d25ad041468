/**
 * Opaque keyset cursors: base64url of the JSON array `[scope, key, id]`, where `scope` names the ordering
 * the cursor belongs to (a sort, or a product's reviews), `key` is the sort key of the last row returned and
 * `id` its id (the tie-breaker). A cursor from another scope, or not made here, is InvalidCursorError (400).
 * A cursor comes from the client, so every field is checked against the type of the column it is compared
 * with (an `integer`, a `text`, a `timestamptz`, a `bigint` id) before it reaches SQL.
 */
import { INT4_MAX } from '@fleet-stack/fleet'
import { InvalidCursorError } from './errors.js'

/** The column type of a sort key: `integer` (int4), `text`, or a timestamp with microseconds. */
export type KeyKind = 'int' | 'text' | 'time'

/** A timestamp as text with all six fractional digits, in UTC, whatever the session's DateStyle. */
export function exactTime(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
}

const TIME = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.\d{6}Z$/
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** True when `text` is a real instant as exactTime() writes it (year 1 to 9999, a day its month has). */
function isExactTime(text: string): boolean {
  const m = TIME.exec(text)
  if (!m) return false
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number)
  if (year < 1 || month < 1 || month > 12) return false
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  const days = month === 2 && leap ? 29 : DAYS[month - 1]
  return day >= 1 && day <= days && hour <= 23 && minute <= 59 && second <= 59
}

/** What is wrong with `key` as a sort key of `kind`, or undefined when it is one. */
function keyProblem(key: unknown, kind: KeyKind): string | undefined {
  switch (kind) {
    case 'int':
      return Number.isInteger(key) && Math.abs(key as number) <= INT4_MAX
        ? undefined
        : `its sort key ${JSON.stringify(key)} is not an integer within ±${INT4_MAX}`
    case 'text':
      if (typeof key !== 'string') return `its sort key ${JSON.stringify(key)} is not a text`
      return key.includes('\u0000') ? 'its sort key contains a NUL character' : undefined
    case 'time':
      return typeof key === 'string' && isExactTime(key)
        ? undefined
        : `its sort key ${JSON.stringify(key)} is not a timestamp such as 2025-01-31T12:00:00.000000Z`
  }
}

export function encodeCursor(scope: string, key: string | number, id: number): string {
  return Buffer.from(JSON.stringify([scope, key, id])).toString('base64url')
}

/** The key and id of a cursor issued for `scope`; throws InvalidCursorError saying what is wrong. */
export function decodeCursor(
  raw: string,
  scope: string,
  kind: KeyKind,
): { key: string | number; id: number } {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'))
  } catch {
    throw new InvalidCursorError('not a cursor this API issued')
  }
  if (!Array.isArray(parsed) || parsed.length !== 3)
    throw new InvalidCursorError('not a cursor this API issued')
  const [s, key, id] = parsed as [unknown, unknown, unknown]
  if (s !== scope)
    throw new InvalidCursorError(
      typeof s === 'string' && !s.includes('\u0000') && s.length <= 100
        ? `it was issued for ${s}, not ${scope}`
        : 'not a cursor this API issued',
    )
  const problem = keyProblem(key, kind)
  if (problem) throw new InvalidCursorError(problem)
  if (!Number.isSafeInteger(id) || (id as number) < 1)
    throw new InvalidCursorError(`its id ${JSON.stringify(id)} is not a positive integer`)
  return { key: key as string | number, id: id as number }
}
