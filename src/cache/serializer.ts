/**
 * The cache's serializer: msgpackr with one registered extension for cached classes. Dates, Maps, Sets,
 * BigInts, Buffers, plain objects and arrays round-trip natively (records mode keeps plain objects and Maps
 * apart); an instance of a registered class is written as [name, own enumerable fields] and read back with
 * the class's prototype, so its methods work. Nested registered classes round-trip the same way.
 * Limits: #private fields and closures are not stored (cached classes keep their state in public fields);
 * getters are recomputed from fields on the other side, as methods are.
 */
import { addExtension, Packr } from 'msgpackr'
import { ClassRegistrationError } from './errors.js'

/** A class whose instances can be cached: any constructor (it is never called on read). */
export type AnyClass<T extends object = object> = abstract new (...args: never[]) => T

/** msgpack extension type of Fleet's cached classes (0-127 are free for applications). */
const CLASS_EXT = 0x46

const byName = new Map<string, AnyClass>()
const byClass = new Map<AnyClass, string>()

function revive(data: unknown): object {
  if (!Array.isArray(data) || typeof data[0] !== 'string') {
    throw new ClassRegistrationError('a cached class instance is malformed')
  }
  const Class = byName.get(data[0])
  if (!Class) {
    throw new ClassRegistrationError(
      `cached value holds class ${data[0]} that is not registered in this process; register it with registerClass()`,
    )
  }
  return Object.assign(Object.create(Class.prototype) as object, data[1] as object)
}

/**
 * Registers `Class` under a stable `name` (the name is stored, so keep it across releases). Idempotent.
 * @example registerClass(ProductPage, 'ProductPage')
 */
export function registerClass(Class: AnyClass, name: string = Class.name): void {
  const known = byName.get(name)
  if (known === Class) return
  if (known) throw new ClassRegistrationError(`two classes are registered under the cache name ${name}`)
  if (byClass.has(Class)) {
    throw new ClassRegistrationError(`class ${Class.name} is already registered as ${byClass.get(Class)}`)
  }
  byName.set(name, Class)
  byClass.set(Class, name)
  addExtension({
    Class: Class as unknown as new (...args: unknown[]) => object,
    type: CLASS_EXT,
    write: (instance: object) => [name, { ...instance }],
    read: revive,
  })
}

/** True when `Class` was registered. */
export function isRegistered(Class: AnyClass): boolean {
  return byClass.has(Class)
}

const packr = new Packr({ moreTypes: true, int64AsType: 'bigint', useBigIntExtension: true })

/** Encodes a value (rows, or a registered class instance with whatever it nests). */
export function pack(value: unknown): Buffer {
  return packr.pack(value)
}

/** Decodes what `pack` wrote. */
export function unpack<T>(bytes: Buffer): T {
  return packr.unpack(bytes) as T
}
