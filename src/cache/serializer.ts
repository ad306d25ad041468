/**
 * The cache's serializer: msgpackr with two registered extensions, one for cached classes and one for query
 * results. Dates, Maps, Sets, BigInts, Buffers, plain objects and arrays round-trip natively (records mode
 * keeps plain objects and Maps apart).
 *
 * Classes: an instance of a registered class is written as [name, field names joined by commas, ...values]
 * and read back with the class's prototype, so its methods work; nested registered classes round-trip the
 * same way. Reading uses one constructor per (class, field list), compiled on first sight, so an instance
 * is built with a fixed shape in one step instead of field by field. (msgpackr's records define their shape
 * in every message and recompile their reader in each, which made decoding a product page about 1.6x slower.)
 * An instance with a field name that holds a comma is written as [name, { fields }] instead, and read so.
 *
 * Query results (`RowSet`): rows that share one field list are written column names first, then the values
 * row after row, and read back as plain objects built by one compiled function per field list.
 *
 * Limits: #private fields and closures are not stored (cached classes keep their state in public fields);
 * getters are recomputed from fields on the other side, as methods are.
 */
import { addExtension, Packr } from 'msgpackr'
import { ClassRegistrationError } from './errors.js'

/** A class whose instances can be cached: any constructor (it is never called on read). */
export type AnyClass<T extends object = object> = abstract new (...args: never[]) => T

/** msgpack extension types (0-127 are free for applications). */
const CLASS_EXT = 0x46
const ROWS_EXT = 0x47

const byName = new Map<string, AnyClass>()
const byClass = new Map<AnyClass, string>()

/** Builds one object from `data[at..]`; `width` is how many values it takes. */
type Build = ((data: readonly unknown[], at: number) => object) & { width: number }

/**
 * Compiled builders per owner (a class, or ROWS for query rows), by field list; bounded (shapes are few).
 * The last shape used is checked first by plain string comparison: most owners have one shape, and a
 * freshly decoded field list would otherwise be hashed for every instance.
 */
interface Shapes {
  lastFields: string | undefined
  lastBuild: Build | undefined
  all: Map<string, Build>
}
const shapes = new Map<object, Shapes>()
const ROWS = {}
const MAX_SHAPES = 100

/** A name that may be written as a bare or quoted key in generated code without surprises. */
const ordinary = (key: string) => key !== '__proto__' && key.length > 0 && !key.includes(',')

/**
 * A function that builds one object from `data[at..]` in field order: `new F(data, at)` with F's prototype
 * set to the class's (instances), or an object literal (rows).
 */
function compile(fields: readonly string[], proto: object | null): Build {
  let build: (d: readonly unknown[], a: number) => object
  if (proto) {
    const body = fields.map((f, i) => `this[${JSON.stringify(f)}] = d[a + ${i}];`).join('\n')
    const F = new Function('d', 'a', body) as unknown as new (d: readonly unknown[], a: number) => object
    F.prototype = proto
    build = (d, a) => new F(d, a)
  } else {
    const body = `return {${fields.map((f, i) => `${JSON.stringify(f)}: d[a + ${i}]`).join(', ')}}`
    build = new Function('d', 'a', body) as typeof build
  }
  return Object.assign(build, { width: fields.length })
}

function builder(owner: object, fields: string, proto: object | null): Build {
  let own = shapes.get(owner)
  if (!own) {
    own = { lastFields: undefined, lastBuild: undefined, all: new Map() }
    shapes.set(owner, own)
  }
  if (own.lastFields === fields && own.lastBuild) return own.lastBuild
  let build = own.all.get(fields)
  if (!build) {
    const list = fields === '' ? [] : fields.split(',')
    if (!list.every(ordinary))
      throw new ClassRegistrationError('a cached value names a field that cannot be read')
    build = compile(list, proto)
    if (own.all.size >= MAX_SHAPES) own.all.clear()
    own.all.set(fields, build)
  }
  own.lastFields = fields
  own.lastBuild = build
  return build
}

function classOf(name: unknown): AnyClass {
  if (typeof name !== 'string') throw new ClassRegistrationError('a cached class instance is malformed')
  const Class = byName.get(name)
  if (!Class) {
    throw new ClassRegistrationError(
      `cached value holds class ${name} that is not registered in this process; register it with registerClass()`,
    )
  }
  return Class
}

function writeInstance(instance: object): unknown[] {
  const name = byClass.get(instance.constructor as AnyClass)
  if (name === undefined) {
    throw new ClassRegistrationError(
      `class ${instance.constructor.name} extends a cached class but is not registered itself; register it with registerClass()`,
    )
  }
  const keys = Object.keys(instance)
  if (!keys.every(ordinary)) return [name, { ...instance }] // a key with a comma: the slower form
  const out: unknown[] = [name, keys.join(',')]
  for (const k of keys) out.push((instance as Record<string, unknown>)[k])
  return out
}

function readInstance(data: unknown): object {
  if (!Array.isArray(data)) throw new ClassRegistrationError('a cached class instance is malformed')
  const Class = classOf(data[0])
  if (typeof data[1] !== 'string')
    return Object.assign(Object.create(Class.prototype) as object, data[1] as object)
  return builder(Class, data[1], Class.prototype as object)(data, 2)
}

/** Rows of a query result, as stored: read back as a plain array of plain objects. */
export class RowSet {
  constructor(readonly rows: readonly object[]) {}
}

function writeRows(set: RowSet): unknown[] {
  const rows = set.rows
  if (rows.length === 0) return ['']
  const keys = Object.keys(rows[0])
  const uniform = keys.every(ordinary) && rows.every((r) => r.constructor === Object)
  if (!uniform) return [null, ...rows]
  const out: unknown[] = [keys.join(',')]
  for (const r of rows) {
    const own = Object.keys(r)
    if (own.length !== keys.length || own.some((k, i) => k !== keys[i])) return [null, ...rows]
    for (const k of keys) out.push((r as Record<string, unknown>)[k])
  }
  return out
}

function readRows(data: unknown): object[] {
  if (!Array.isArray(data)) throw new ClassRegistrationError('a cached query result is malformed')
  if (data[0] === null) return data.slice(1) as object[]
  const cols = data[0] as string
  if (cols === '') return []
  const build = builder(ROWS, cols, null)
  const count = (data.length - 1) / build.width
  if (!Number.isInteger(count)) throw new ClassRegistrationError('a cached query result is malformed')
  const rows: object[] = new Array(count)
  for (let i = 0, at = 1; i < rows.length; i++, at += build.width) rows[i] = build(data, at)
  return rows
}

addExtension({
  Class: RowSet as unknown as new (...args: unknown[]) => object,
  type: ROWS_EXT,
  write: (set: RowSet) => writeRows(set),
  read: readRows,
})

/**
 * Registers `Class` under a stable `name` (the name is stored, so keep it across releases). Idempotent. A
 * subclass of a registered class is registered on its own (its instances are written under its own name).
 * @example registerClass(ProductPage, 'ProductPage')
 */
export function registerClass(Class: AnyClass, name: string = Class.name): void {
  const known = byName.get(name)
  if (known === Class) return
  if (known) throw new ClassRegistrationError(`two classes are registered under the cache name ${name}`)
  if (byClass.has(Class)) {
    throw new ClassRegistrationError(`class ${Class.name} is already registered as ${byClass.get(Class)}`)
  }
  if (!/^[^|]{1,200}$/.test(name)) throw new ClassRegistrationError(`the cache name ${name} is not usable`)
  byName.set(name, Class)
  byClass.set(Class, name)
  addExtension({
    Class: Class as unknown as new (...args: unknown[]) => object,
    type: CLASS_EXT,
    write: writeInstance,
    read: readInstance,
  })
}

/** True when `Class` was registered. */
export function isRegistered(Class: AnyClass): boolean {
  return byClass.has(Class)
}

const packr = new Packr({ moreTypes: true, int64AsType: 'bigint', useBigIntExtension: true })

/** Encodes a value (a RowSet, or a registered class instance with whatever it nests). */
export function pack(value: unknown): Buffer {
  return packr.pack(value)
}

/** Decodes what `pack` wrote (a RowSet comes back as its array of rows). */
export function unpack<T>(bytes: Buffer): T {
  return packr.unpack(bytes) as T
}
