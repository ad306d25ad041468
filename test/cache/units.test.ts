import { describe, expect, it } from 'vitest'
import { Breaker } from '../../src/cache/breaker.js'
import { ClassRegistrationError } from '../../src/cache/errors.js'
import { pack, RowSet, registerClass, unpack } from '../../src/cache/serializer.js'
import { SqlTables } from '../../src/cache/sql-tables.js'

describe('table detection (libpg-query)', () => {
  const t = new SqlTables()
  it('finds the tables of joins, subqueries, set operations and CTEs, not the CTE names', async () => {
    const r = await t.of(`WITH top AS (SELECT product_id FROM reviews WHERE rating = 5)
      SELECT p.* FROM public.products p JOIN categories c ON c.id = p.category_id
      WHERE p.id IN (SELECT product_id FROM top) AND EXISTS (SELECT 1 FROM users u WHERE u.id = 1)
      UNION SELECT * FROM archived_products`)
    expect(r.reads).toEqual(['archived_products', 'categories', 'products', 'reviews', 'users'])
    expect(r.writes).toEqual([])
    expect(r.cacheable).toBe(true)
  })
  it('finds what statements write, data-modifying CTEs included', async () => {
    expect((await t.of('UPDATE products SET stock = 0 WHERE id = $1')).writes).toEqual(['products'])
    expect((await t.of('DELETE FROM reviews USING users WHERE users.id = reviews.user_id')).writes).toEqual([
      'reviews',
    ])
    expect((await t.of('TRUNCATE a, b')).writes).toEqual(['a', 'b'])
    expect((await t.of('INSERT INTO orders SELECT * FROM carts')).writes).toEqual(['orders'])
    const cte = await t.of('WITH d AS (DELETE FROM carts RETURNING *) SELECT * FROM d')
    expect(cte.writes).toEqual(['carts'])
    expect(cte.cacheable).toBe(false)
    expect(
      (await t.of('MERGE INTO stock s USING incoming i ON s.id = i.id WHEN MATCHED THEN DELETE')).writes,
    ).toEqual(['stock'])
    expect((await t.of('SELECT * INTO copy_of FROM products')).writes).toEqual(['copy_of'])
  })
  it('locking reads and several statements are not cacheable; bad SQL is a clear error', async () => {
    expect((await t.of('SELECT * FROM products FOR UPDATE')).cacheable).toBe(false)
    expect((await t.of('SELECT 1 FROM a; SELECT 1 FROM b')).cacheable).toBe(false)
    await expect(t.of('SELEC * FROM x')).rejects.toMatchObject({ code: 'FLEET_E_CACHE_SQL_PARSE' })
  })
})

class Money {
  constructor(
    public cents = 0n,
    public currency = 'EUR',
  ) {}
  format(): string {
    return `${this.cents} ${this.currency}`
  }
}
class Item {
  price = new Money()
  when = new Date(0)
  tags = new Set<string>()
  meta = new Map<unknown, unknown>()
  raw = Buffer.alloc(0)
  label(): string {
    return `item at ${this.price.format()}`
  }
}

describe('serializer (msgpackr)', () => {
  it('round-trips registered classes with Dates, Maps (any keys), Sets, BigInts, Buffers and nesting', () => {
    registerClass(Money, 'UnitMoney')
    registerClass(Item, 'UnitItem')
    const item = new Item()
    item.price = new Money(2n ** 70n, 'USD')
    item.when = new Date('2024-02-03T04:05:06.789Z')
    item.tags = new Set(['a', 'b'])
    item.meta = new Map<unknown, unknown>([
      [1, 'one'],
      ['obj', { plain: true, list: [1, 'x', null] }],
    ])
    item.raw = Buffer.from('bytes')
    const back = unpack<{ items: Item[] }>(pack({ items: [item], count: 1 })).items[0]
    expect(back).toBeInstanceOf(Item)
    expect(back.price).toBeInstanceOf(Money)
    expect(back.label()).toBe(`item at ${2n ** 70n} USD`)
    expect(back.when.toISOString()).toBe('2024-02-03T04:05:06.789Z')
    expect(back.tags).toEqual(new Set(['a', 'b']))
    expect(back.meta.get(1)).toBe('one')
    expect(back.meta.get('obj')).toEqual({ plain: true, list: [1, 'x', null] })
    expect(Buffer.isBuffer(back.raw) && back.raw.toString()).toBe('bytes')
  })
  it('refuses two classes under one name', () => {
    class Other {}
    expect(() => registerClass(Other, 'UnitMoney')).toThrow(ClassRegistrationError)
  })
  it('writes a subclass under its own name whatever the registration order; refuses an unregistered one', () => {
    class Base {
      kind(): string {
        return 'base'
      }
    }
    class Derived extends Base {
      extra = 1
      override kind(): string {
        return 'derived'
      }
    }
    class Unknown extends Base {}
    registerClass(Derived, 'UnitDerived') // the subclass first: msgpackr tries the latest extension first
    registerClass(Base, 'UnitBase')
    const back = unpack<Base[]>(pack([new Derived(), new Base()]))
    expect(back.map((b) => b.kind())).toEqual(['derived', 'base'])
    expect(back[0]).toBeInstanceOf(Derived)
    expect(() => pack(new Unknown())).toThrow(/Unknown extends a cached class but is not registered/)
  })
  it('reads instances of one class with different field lists (shapes) mixed in one value', () => {
    class Shape {
      a = 1
      sum(): number {
        return Object.values(this).reduce((n: number, v) => n + Number(v), 0)
      }
    }
    registerClass(Shape, 'UnitShape')
    const wide = Object.assign(new Shape(), { b: 2 })
    const other = Object.assign(new Shape(), { c: 30, b: 4 })
    const back = unpack<Shape[]>(pack([wide, new Shape(), other, wide, other]))
    expect(back.map((s) => s.sum())).toEqual([3, 1, 35, 3, 35])
    expect(back.map((s) => Object.keys(s).join())).toEqual(['a,b', 'a', 'a,c,b', 'a,b', 'a,c,b'])
  })
  it('reads and writes the [name, { fields }] form, used when a field name holds a comma', () => {
    class Old {
      n = 0
      twice(): number {
        return this.n * 2
      }
    }
    registerClass(Old, 'UnitOld')
    // msgpackr's tag (fixext1, type 0x46) then [name, { fields }]
    const older = Buffer.concat([Buffer.from([0xd4, 0x46, 0]), pack(['UnitOld', { n: 21 }])])
    expect(unpack<Old>(older).twice()).toBe(42)
    const comma = Object.assign(new Old(), { n: 4, 'a,b': 'x' })
    const back = unpack<Old & { 'a,b': string }>(pack(comma))
    expect(back.twice()).toBe(8)
    expect(back['a,b']).toBe('x')
  })
  it('round-trips query rows by columns, with fallbacks for rows that differ or odd column names', () => {
    const rows = [
      { id: 1, name: 'a', at: new Date(5), n: 10n, j: { deep: [1] }, nil: null },
      { id: 2, name: 'b', at: new Date(6), n: -3n, j: null, nil: null },
    ]
    const back = unpack<typeof rows>(pack(new RowSet(rows)))
    expect(back).toEqual(rows)
    expect(Object.getPrototypeOf(back[0])).toBe(Object.prototype)
    expect(back[1].at).toBeInstanceOf(Date)
    expect(unpack(pack(new RowSet([])))).toEqual([])
    const ragged = [{ a: 1 }, { a: 2, b: 3 }, { b: 4, a: 5 }]
    expect(unpack(pack(new RowSet(ragged)))).toEqual(ragged)
    const odd = [{ 'a,b': 1, __proto__x: 2, '': 3, '"quoted"': 4 }]
    expect(unpack(pack(new RowSet(odd)))).toEqual(odd)
    const weird = [{ '"); process.exit(1); ("': 1, '2': 'two', 'with space': true }]
    expect(unpack(pack(new RowSet(weird)))).toEqual(weird)
    const proto = JSON.parse('[{"__proto__": {"polluted": true}, "x": 1}]') as object[]
    const p = unpack<Record<string, unknown>[]>(pack(new RowSet(proto)))[0]
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(p.x).toBe(1)
  })
})

describe('circuit breaker', () => {
  it('opens after the threshold, lets one probe through after the cooldown, closes on its success', () => {
    let now = 0
    const b = new Breaker({ threshold: 3, cooldownMs: 1_000, now: () => now })
    b.failure()
    b.failure()
    expect(b.state).toBe('closed')
    b.failure()
    expect(b.state).toBe('open')
    expect(b.allow()).toBe(false)
    now += 1_000
    expect(b.allow()).toBe(true) // the probe
    expect(b.state).toBe('half-open')
    expect(b.allow()).toBe(false) // only one
    b.failure()
    expect(b.state).toBe('open')
    now += 1_000
    expect(b.allow()).toBe(true)
    b.success()
    expect(b.state).toBe('closed')
    expect(b.allow()).toBe(true)
  })
})
