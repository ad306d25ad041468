/**
 * The shop's errors. Each has a stable code and the HTTP status the runtime answers with; `details` carries
 * what a client needs to act (usually the offending field). The session errors (401/403) live beside the
 * session store in src/web/session.ts and are re-exported here so the error-code test sees them.
 */
import { FleetError } from '@fleet-stack/fleet'

export { AuthenticationRequiredError, ForbiddenError } from '@fleet-stack/fleet'
/** An account with this email exists already. */
export class EmailTakenError extends FleetError {
  static override code = 'FLEET_E_SHOP_EMAIL_TAKEN'
  static override statusCode = 409
  constructor(readonly email: string) {
    super(`an account with the email ${email} exists already; log in instead`, {
      details: { field: 'email' },
    })
  }
}

/** Login failed: unknown email or wrong password (deliberately not saying which). */
export class InvalidCredentialsError extends FleetError {
  static override code = 'FLEET_E_SHOP_INVALID_CREDENTIALS'
  static override statusCode = 401
  constructor() {
    super('the email or the password is wrong')
  }
}

/** No product has this id (or it was deleted). */
export class ProductNotFoundError extends FleetError {
  static override code = 'FLEET_E_SHOP_PRODUCT_NOT_FOUND'
  static override statusCode = 404
  constructor(readonly productId: number) {
    super(`product ${productId} does not exist`, { details: { productId } })
  }
}

/** A request named a category that does not exist (a filter, or a product's categoryId). */
export class UnknownCategoryError extends FleetError {
  static override code = 'FLEET_E_SHOP_UNKNOWN_CATEGORY'
  static override statusCode = 400
  constructor(
    readonly category: string | number,
    readonly field: string,
  ) {
    super(`${field}: category ${category} does not exist; GET /api/categories lists them`, {
      details: { field, category },
    })
  }
}

/** Another product already uses this slug. */
export class SlugTakenError extends FleetError {
  static override code = 'FLEET_E_SHOP_SLUG_TAKEN'
  static override statusCode = 409
  constructor(readonly slug: string) {
    super(`slug ${slug} is used by another product; choose another`, { details: { field: 'slug', slug } })
  }
}

/** The product changed since the client read it (If-Match / expectedVersion did not match). */
export class VersionMismatchError extends FleetError {
  static override code = 'FLEET_E_SHOP_VERSION_MISMATCH'
  static override statusCode = 409
  constructor(
    readonly productId: number,
    readonly expected: number,
    readonly current: number,
  ) {
    super(
      `product ${productId} is at version ${current}, not ${expected}; read it again and reapply the change`,
      { details: { productId, expected, current } },
    )
  }
}

/** This user has already reviewed this product. */
export class ReviewExistsError extends FleetError {
  static override code = 'FLEET_E_SHOP_REVIEW_EXISTS'
  static override statusCode = 409
  constructor(readonly productId: number) {
    super(`you have already reviewed product ${productId}`, { details: { productId } })
  }
}

/** The pagination cursor is not one this API issued, or belongs to another sort. */
export class InvalidCursorError extends FleetError {
  static override code = 'FLEET_E_SHOP_INVALID_CURSOR'
  static override statusCode = 400
  constructor(reason: string) {
    super(`cursor: ${reason}; pass the nextCursor of the previous page unchanged, with the same sort`, {
      details: { field: 'cursor' },
    })
  }
}

/** The cart asks for more units than the product has in stock. */
export class InsufficientStockError extends FleetError {
  static override code = 'FLEET_E_SHOP_INSUFFICIENT_STOCK'
  static override statusCode = 409
  constructor(
    readonly productId: number,
    readonly requested: number,
    readonly stock: number,
  ) {
    super(`product ${productId} has ${stock} in stock; ${requested} requested`, {
      details: { field: 'quantity', productId, requested, stock },
    })
  }
}

/** `If-Match` is not a version number. */
export class InvalidIfMatchError extends FleetError {
  static override code = 'FLEET_E_SHOP_INVALID_IF_MATCH'
  static override statusCode = 400
  constructor(readonly value: string) {
    super(`If-Match: expected the product's ETag, such as "3", not ${JSON.stringify(value)}`, {
      details: { field: 'If-Match' },
    })
  }
}

/** The seed refuses to load into a database that already has a catalog. */
export class CatalogNotEmptyError extends FleetError {
  static override code = 'FLEET_E_SHOP_CATALOG_NOT_EMPTY'
  constructor() {
    super('the catalog already has products; run `fleet seed --reset` to replace it')
  }
}
