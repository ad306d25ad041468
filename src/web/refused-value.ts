/**
 * The second line of defence against client input a column cannot hold. A route's schema should refuse it
 * first (`Text()` for text, integer bounds such as INT4_MAX); when one lets it through, PostgreSQL refuses the
 * value as data (SQLSTATE class 22) and the request answers 400 `FLEET_E_HTTP_INVALID_VALUE`, not 500. Only
 * the codes below, which name a bad value rather than a broken query, are mapped; the server logs each at
 * warn level, as a schema to tighten.
 */
import { InvalidValueError } from './errors.js'

/** SQLSTATE -> what the client should fix. */
const REFUSED: Record<string, string> = {
  '22021': 'text must not contain NUL characters (U+0000) or invalid UTF-8; remove them',
  '22P05': 'text must not contain NUL characters (U+0000); remove them',
  '22003': 'a number is out of range for its field; send a smaller one',
  '22007': 'a date or time is not valid; send an ISO 8601 timestamp such as 2025-01-31T12:00:00Z',
  '22008': 'a date or time is out of range; send a real date such as 2025-01-31T12:00:00Z',
  '22P02': 'a value does not have the type its field expects',
  '22001': 'a text is longer than its field allows; send a shorter one',
}

/** True for an error PostgreSQL sent (pg's DatabaseError, also another copy of pg): it has a SQLSTATE and a severity. */
function sqlstate(err: unknown): string | undefined {
  const e = err as { code?: unknown; severity?: unknown } | null
  if (!(err instanceof Error) || typeof e?.code !== 'string' || typeof e.severity !== 'string')
    return undefined
  return /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined
}

/**
 * The 400 for an error, or one of its causes, in which PostgreSQL refused a value as data; undefined for
 * every other error.
 */
export function refusedValue(err: unknown): InvalidValueError | undefined {
  let e: unknown = err
  for (let depth = 0; depth < 4 && e; depth++) {
    const code = sqlstate(e)
    const fix = code ? REFUSED[code] : undefined
    if (code && fix) {
      return new InvalidValueError(
        `the database refused a value of this request (${(e as Error).message}): ${fix}`,
        {
          details: { sqlstate: code },
          cause: err,
        },
      )
    }
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}
