/**
 * The cart lives in the session hash, one field per line (`cart:<productId>` = quantity), so concurrent
 * changes to different lines never overwrite each other. Prices and names are read fresh from the catalog
 * each time; a line whose product was deleted is dropped.
 */

import type { Queryable, Session } from '@fleet-stack/fleet'
import { getProduct, getProducts } from './catalog.js'
import { InsufficientStockError, ProductNotFoundError } from './errors.js'

const PREFIX = 'cart:'

export interface CartLine {
  productId: number
  slug: string
  name: string
  quantity: number
  priceCents: number
  currency: string
  stock: number
  lineTotalCents: number
}

export interface Cart {
  items: CartLine[]
  /** Units over all lines. */
  count: number
  /** Sum of the lines per currency, e.g. { EUR: 12990 }. */
  totals: Record<string, number>
}

/** The session's cart with current product data, ordered by product id. */
export async function readCart(db: Queryable, session: Session): Promise<Cart> {
  const fields = await session.all()
  const quantities = new Map<number, number>()
  for (const [field, value] of Object.entries(fields)) {
    if (!field.startsWith(PREFIX)) continue
    const id = Number(field.slice(PREFIX.length))
    const qty = Number(value)
    if (Number.isSafeInteger(id) && Number.isSafeInteger(qty) && qty > 0) quantities.set(id, qty)
  }
  const products = await getProducts(db, [...quantities.keys()])
  const gone = [...quantities.keys()].filter((id) => !products.some((p) => p.id === id))
  if (gone.length > 0) await session.delete(...gone.map((id) => PREFIX + id))
  const items = products
    .sort((a, b) => a.id - b.id)
    .map((p) => {
      const quantity = quantities.get(p.id)!
      return {
        productId: p.id,
        slug: p.slug,
        name: p.name,
        quantity,
        priceCents: p.priceCents,
        currency: p.currency,
        stock: p.stock,
        lineTotalCents: p.priceCents * quantity,
      }
    })
  const totals: Record<string, number> = {}
  for (const line of items) totals[line.currency] = (totals[line.currency] ?? 0) + line.lineTotalCents
  return { items, count: items.reduce((n, l) => n + l.quantity, 0), totals }
}

/** Sets a line's quantity (creating the session when needed); 404 unknown product, 409 over stock. */
export async function setCartItem(
  db: Queryable,
  session: Session,
  productId: number,
  quantity: number,
): Promise<void> {
  const product = await getProduct(db, productId)
  if (!product) throw new ProductNotFoundError(productId)
  if (quantity > product.stock) throw new InsufficientStockError(productId, quantity, product.stock)
  await session.set({ [PREFIX + productId]: String(quantity) })
}

/** Removes a line (nothing happens when it is not in the cart). */
export async function removeCartItem(session: Session, productId: number): Promise<void> {
  await session.delete(PREFIX + productId)
}
