/**
 * The words the seed builds its catalog from, and the seeded PRNG that picks them. Same seed, same
 * sequence, on every machine: the catalog is deterministic.
 */

/** mulberry32: a small, fast 32-bit PRNG; good enough for fake data, never for secrets. */
export class Prng {
  #state: number

  constructor(seed: number) {
    this.#state = seed >>> 0
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let t = this.#state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]
  }
}

export const CATEGORIES = [
  'Books',
  'Electronics',
  'Garden',
  'Kitchen',
  'Toys',
  'Sports',
  'Music',
  'Office',
  'Clothing',
  'Shoes',
  'Beauty',
  'Health',
  'Automotive',
  'Tools',
  'Pets',
  'Baby',
  'Grocery',
  'Jewelry',
  'Outdoors',
  'Games',
] as const

export const ADJECTIVES = [
  'Sturdy',
  'Compact',
  'Elegant',
  'Rustic',
  'Modern',
  'Classic',
  'Vintage',
  'Portable',
  'Deluxe',
  'Handmade',
  'Lightweight',
  'Premium',
  'Durable',
  'Cozy',
  'Sleek',
  'Practical',
  'Bright',
  'Quiet',
  'Smart',
  'Tiny',
  'Giant',
  'Foldable',
  'Waterproof',
  'Ergonomic',
] as const

export const MATERIALS = [
  'Oak',
  'Steel',
  'Bamboo',
  'Leather',
  'Cotton',
  'Ceramic',
  'Glass',
  'Copper',
  'Wool',
  'Linen',
  'Granite',
  'Walnut',
  'Silicone',
  'Carbon',
  'Brass',
  'Cork',
] as const

export const NOUNS = [
  'Lamp',
  'Chair',
  'Notebook',
  'Kettle',
  'Backpack',
  'Speaker',
  'Bottle',
  'Blanket',
  'Clock',
  'Wallet',
  'Helmet',
  'Mug',
  'Planter',
  'Headphones',
  'Jacket',
  'Sneakers',
  'Puzzle',
  'Skillet',
  'Toolbox',
  'Scarf',
  'Tent',
  'Brush',
  'Keyboard',
  'Candle',
  'Basket',
  'Drone',
  'Guitar',
  'Leash',
  'Stroller',
  'Necklace',
] as const

export const FEATURES = [
  'built to last for years',
  'easy to clean',
  'a favourite gift',
  'designed in small batches',
  'tested in harsh weather',
  'with a two-year warranty',
  'made from recycled parts',
  'loved by professionals',
  'perfect for small spaces',
  'shipped in plastic-free packaging',
] as const

export const REVIEW_OPENINGS = [
  'Exactly as described.',
  'Better than expected.',
  'Not what I hoped for.',
  'Solid value for the price.',
  'Arrived quickly and well packed.',
  'Stopped working after a month.',
  'My second one already.',
  'Decent, with a few flaws.',
  'Would buy again.',
  'The colour is a little off.',
] as const

export const REVIEW_CLOSINGS = [
  'Recommended.',
  'Five stars from me.',
  'Returned it.',
  'Good enough for daily use.',
  'Customer service was helpful.',
  'Instructions could be clearer.',
  'Fits perfectly.',
  'A bit noisy but fine.',
] as const

/** Lower-case, dash-separated, ASCII: `Sturdy Oak Lamp` -> `sturdy-oak-lamp`. */
export function slugify(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
}
