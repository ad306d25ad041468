/**
 * Schema validation for routes. Query strings and path params arrive as text, so they are coerced to the
 * schema's types ("20" -> 20); JSON bodies are typed already and are not (a "2" where an integer is expected is
 * a 400). Unknown body fields are refused, not silently dropped.
 */
import { Ajv, type Options } from 'ajv'
import formatsModule, { type FormatsPlugin } from 'ajv-formats'
import type { FastifyInstance, FastifySchema } from 'fastify'

// ajv-formats is CommonJS: under NodeNext its default export arrives as the module object.
const addFormats: FormatsPlugin =
  (formatsModule as unknown as { default?: FormatsPlugin }).default ??
  (formatsModule as unknown as FormatsPlugin)

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
