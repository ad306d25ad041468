/**
 * JSON schemas of the shop API (TypeBox): they validate every body, query and parameter, type the handlers,
 * serialise the responses, and become the OpenAPI document at /openapi.json. Each field is bounded as its
 * column is: strings bound for text columns are `Text()` (no NUL, which PostgreSQL cannot store), integers
 * stay within their column's type (INT4_MAX for `integer`), so client input is a 400, never a database error.
 */
import { type Static, Type } from '@fastify/type-provider-typebox'
import { INT4_MAX, Text } from '@fleet-stack/fleet'
import { SORTS } from './catalog.js'
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './passwords.js'

/** A timestamp: a Date in the handlers, an ISO 8601 string on the wire. */
const Timestamp = Type.Unsafe<Date>({ type: 'string', format: 'date-time' })

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable code, e.g. FLEET_E_SHOP_PRODUCT_NOT_FOUND (docs/errors.md)' }),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { description: 'Every error answer has this shape' },
)

/** Error responses a route documents, by status. */
export function errors(...statuses: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorResponse]))
}

export const Email = Type.String({ format: 'email', maxLength: 254, description: 'case-insensitive' })

export const User = Type.Object({
  id: Type.Integer(),
  email: Type.String(),
  role: Type.Unsafe<'customer' | 'admin'>({ type: 'string', enum: ['customer', 'admin'] }),
})

export const NewUserBody = Type.Object(
  {
    email: Email,
    password: Type.String({ minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH }),
  },
  { additionalProperties: false },
)

export const LoginBody = Type.Object(
  { email: Email, password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH }) },
  { additionalProperties: false },
)

export const Category = Type.Object({
  id: Type.Integer(),
  slug: Type.String(),
  name: Type.String(),
  productCount: Type.Integer(),
})

export const Product = Type.Object({
  id: Type.Integer(),
  slug: Type.String(),
  name: Type.String(),
  description: Type.String(),
  priceCents: Type.Integer(),
  currency: Type.String(),
  stock: Type.Integer(),
  categoryId: Type.Integer(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  version: Type.Integer({ description: 'Incremented by every change; If-Match names it' }),
})

export const Review = Type.Object({
  id: Type.Integer(),
  productId: Type.Integer(),
  userId: Type.Integer(),
  rating: Type.Integer({ minimum: 1, maximum: 5 }),
  body: Type.String(),
  createdAt: Timestamp,
})

export const ProductPage = Type.Object({
  ...Product.properties,
  category: Type.Object({ id: Type.Integer(), slug: Type.String(), name: Type.String() }),
  rating: Type.Object({
    count: Type.Integer(),
    average: Type.Union([Type.Number(), Type.Null()], { description: 'null without reviews' }),
  }),
  reviews: Type.Array(Review, { description: 'The five latest reviews, newest first' }),
  images: Type.Record(Type.String({ pattern: '^(64|256|1024)$' }), Type.String(), {
    description: 'Thumbnail URLs by size in px ("64", "256", "1024"), once rendered; {} before',
  }),
  related: Type.Array(Product, {
    description: 'Up to five products of the same category, closest price first',
  }),
})

export const ProductId = Type.Object({
  id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'product id' }),
})

export const ListQuery = Type.Object(
  {
    category: Type.Optional(Text({ minLength: 1, maxLength: 100, description: 'category slug or id' })),
    q: Type.Optional(
      Text({ maxLength: 200, description: "full-text search (plainto_tsquery('simple', q))" }),
    ),
    sort: Type.Optional(
      Type.Unsafe<(typeof SORTS)[number]>({ type: 'string', enum: [...SORTS], default: '-created' }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    cursor: Type.Optional(
      Type.String({ maxLength: 1000, description: 'nextCursor of the previous page (same sort)' }),
    ),
  },
  { additionalProperties: false },
)

export const ProductListResponse = Type.Object({
  items: Type.Array(Product),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page' }),
})

const Slug = Type.String({ pattern: '^[a-z0-9]+(?:-[a-z0-9]+)*$', maxLength: 200 })
const fields = {
  slug: Slug,
  name: Text({ minLength: 1, maxLength: 200 }),
  description: Text({ maxLength: 10_000 }),
  priceCents: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
  currency: Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217, default EUR' }),
  stock: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }),
  categoryId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
}

export const NewProductBody = Type.Object(
  {
    slug: Type.Optional(fields.slug),
    name: fields.name,
    description: Type.Optional(fields.description),
    priceCents: fields.priceCents,
    currency: Type.Optional(fields.currency),
    stock: Type.Optional(fields.stock),
    categoryId: fields.categoryId,
  },
  { additionalProperties: false },
)

export const ProductPatchBody = Type.Object(
  {
    slug: Type.Optional(fields.slug),
    name: Type.Optional(fields.name),
    description: Type.Optional(fields.description),
    priceCents: Type.Optional(fields.priceCents),
    currency: Type.Optional(fields.currency),
    stock: Type.Optional(fields.stock),
    categoryId: Type.Optional(fields.categoryId),
    expectedVersion: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: INT4_MAX,
        description: 'apply only at this version (like If-Match); else 409',
      }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
)

export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(
    Type.String({ maxLength: 100, description: 'the ETag ("<version>") the change applies to; else 409' }),
  ),
})

export const DeletedResponse = Type.Object({
  id: Type.Integer(),
  version: Type.Integer({ description: 'the version the deletion counts as (last version + 1)' }),
  deleted: Type.Boolean(),
})

export const NewReviewBody = Type.Object(
  {
    rating: Type.Integer({ minimum: 1, maximum: 5 }),
    body: Type.Optional(Text({ maxLength: 5_000 })),
  },
  { additionalProperties: false },
)

export const ReviewsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    cursor: Type.Optional(Type.String({ maxLength: 1000, description: 'nextCursor of the previous page' })),
  },
  { additionalProperties: false },
)

export const ReviewListResponse = Type.Object({
  items: Type.Array(Review),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page' }),
})

export const CartItemParams = Type.Object({
  productId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
})

export const CartItemBody = Type.Object(
  { quantity: Type.Integer({ minimum: 1, maximum: 999 }) },
  { additionalProperties: false },
)

export const CartResponse = Type.Object({
  items: Type.Array(
    Type.Object({
      productId: Type.Integer(),
      slug: Type.String(),
      name: Type.String(),
      quantity: Type.Integer(),
      priceCents: Type.Integer(),
      currency: Type.String(),
      stock: Type.Integer(),
      lineTotalCents: Type.Integer(),
    }),
  ),
  count: Type.Integer({ description: 'units over all lines' }),
  totals: Type.Record(Type.String(), Type.Integer(), { description: 'sum per currency, in cents' }),
})

export type ListQueryType = Static<typeof ListQuery>
