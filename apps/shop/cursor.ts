/**
 * Opaque keyset cursors: base64url of the JSON array `[scope, key, id]`, where `scope` names the ordering
 * the cursor belongs to (a sort, or a product's reviews), `key` is the sort key of the last row returned and
 * `id` its id (the tie-breaker). A cursor from another scope, or not made here, is InvalidCursorError (400).
 */
import { InvalidCursorError } from './errors.js'

export type KeyKind = 'int' | 'text' | 'time'

/** A timestamp as text with all six fractional digits, in UTC, whatever the session's DateStyle. */
export function exactTime(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
}

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/

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
  if (s !== scope) throw new InvalidCursorError(`it was issued for ${String(s)}, not ${scope}`)
  const keyOk =
    kind === 'int'
      ? Number.isSafeInteger(key)
      : kind === 'text'
        ? typeof key === 'string'
        : typeof key === 'string' && TIME.test(key)
  if (!keyOk || !Number.isSafeInteger(id) || (id as number) < 1)
    throw new InvalidCursorError('not a cursor this API issued')
  return { key: key as string | number, id: id as number }
}
