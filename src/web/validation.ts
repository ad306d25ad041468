/**
 * Schema validation for routes. Query strings and path params arrive as text, so they are coerced to the
 * schema's types ("20" -> 20); JSON bodies are typed already and are not (a "2" where an integer is expected is
 * a 400). Unknown body fields are refused, not silently dropped.
 *
 * PostgreSQL `text` cannot hold NUL (U+0000): a string bound for a text column is declared with `Text()`,
 * whose pattern refuses it, so the client gets a 400 naming the field instead of the database's error.
 */
import { type StringOptions, type TString, Type } from '@sinclair/typebox'
import { Ajv, type Options } from 'ajv'
import formatsModule, { type FormatsPlugin } from 'ajv-formats'
import type { FastifyInstance, FastifySchema } from 'fastify'

// ajv-formats is CommonJS: under NodeNext its default export arrives as the module object.
const addFormats: FormatsPlugin =
  (formatsModule as unknown as { default?: FormatsPlugin }).default ??
  (formatsModule as unknown as FormatsPlugin)

/** The pattern of a string PostgreSQL `text` can store: any characters but NUL (U+0000). */
export const STORABLE_TEXT = '^[^\\u0000]*$'

/** Largest value of a PostgreSQL `integer` (int4) column; bound integer fields bound for one with it. */
export const INT4_MAX = 2_147_483_647

/**
 * A string schema for a value stored in (or compared with) a PostgreSQL text column: it refuses NUL, which
 * PostgreSQL cannot store, with a 400 `FLEET_E_HTTP_VALIDATION` that names the field.
 * @example body: Type.Object({ name: Text({ minLength: 1, maxLength: 200 }) })
 */
export function Text(options: Omit<StringOptions, 'pattern'> = {}): TString {
  return Type.String({ ...options, pattern: STORABLE_TEXT })
}

function makeAjv(coerce: boolean): Ajv {
  const options: Options = {
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    allErrors: false,
    strict: false,
  }
  const ajv = new Ajv(options)
  addFormats(ajv)
  return ajv
}

/** Installs the validator compiler on `app`. */
export function installValidation(app: FastifyInstance): void {
  const body = makeAjv(false)
  const text = makeAjv(true)
  app.setValidatorCompiler(({ schema, httpPart }: { schema: FastifySchema; httpPart?: string }) =>
    (httpPart === 'body' ? body : text).compile(schema as object),
  )
}
