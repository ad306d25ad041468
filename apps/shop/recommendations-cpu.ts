/**
 * The counting of the recommendations job, run on a worker thread: for every product, how many users
 * reviewed both it and each other product; keeps the `perProduct` best (most shared users, then lowest id).
 * Pure: input arrays in, flat result arrays out (cheap to send between threads).
 */

export interface CoReviewInput {
  /** `users[i]` reviewed `products[i]`; pairs distinct, sorted by user. */
  users: Float64Array
  products: Float64Array
  perProduct: number
}

export interface CoReviewResult {
  /** Products that have reviews. */
  products: number
  perProduct: number
  /** Row i of the result: product[i]'s rank[i]-th recommendation is recommended[i], shared by shared[i] users. */
  product: number[]
  rank: number[]
  recommended: number[]
  shared: number[]
}

/** Counts co-reviews; reports progress (5-95) as it goes through the users. */
export function coReviews(
  input: CoReviewInput,
  report: (progress: number) => void = () => {},
): CoReviewResult {
  const { users, products, perProduct } = input
  const counts = new Map<number, Map<number, number>>()
  const n = users.length
  let start = 0
  let lastReport = Date.now()
  while (start < n) {
    let end = start
    while (end < n && users[end] === users[start]) end++
    for (let i = start; i < end; i++) {
      const a = products[i]
      let row = counts.get(a)
      if (!row) {
        row = new Map()
        counts.set(a, row)
      }
      for (let j = start; j < end; j++) {
        if (j === i) continue
        const b = products[j]
        row.set(b, (row.get(b) ?? 0) + 1)
      }
    }
    start = end
    if (Date.now() - lastReport > 200) {
      lastReport = Date.now()
      report(5 + Math.floor((start / n) * 85))
    }
  }
  const out: CoReviewResult = {
    products: counts.size,
    perProduct,
    product: [],
    rank: [],
    recommended: [],
    shared: [],
  }
  const ids = [...counts.keys()].sort((x, y) => x - y)
  for (const a of ids) {
    const best = [...counts.get(a)!.entries()].sort((x, y) => y[1] - x[1] || x[0] - y[0]).slice(0, perProduct)
    best.forEach(([b, c], r) => {
      out.product.push(a)
      out.rank.push(r + 1)
      out.recommended.push(b)
      out.shared.push(c)
    })
  }
  report(95)
  return out
}
