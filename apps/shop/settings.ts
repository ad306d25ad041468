import { appSettings, type SettingsOf, setting } from '@fleet-stack/fleet'

/** The shop's own settings: the admin account, the seed, images and recommendations. */
export const shopSettings = {
  adminEmail: setting.string({
    env: 'FLEET_ADMIN_EMAIL',
    doc: 'When set with FLEET_ADMIN_PASSWORD, this admin account is created or updated at start.',
    pattern: /^[^\s@]+@[^\s@]+$/,
    hint: 'expected an email address',
  }),
  adminPassword: setting.string({
    env: 'FLEET_ADMIN_PASSWORD',
    doc: 'Password of the FLEET_ADMIN_EMAIL account (12 characters or more).',
    pattern: /^.{12,}$/s,
    hint: 'expected at least 12 characters',
  }),
  seedProducts: setting.int({
    env: 'FLEET_SEED_PRODUCTS',
    doc: 'Products the seed creates.',
    default: 10_000,
    min: 1,
    max: 10_000_000,
    flag: 'products',
    commands: ['seed', 'up'],
  }),
  seedReviews: setting.int({
    env: 'FLEET_SEED_REVIEWS',
    doc: 'Reviews the seed creates.',
    default: 50_000,
    min: 0,
    max: 100_000_000,
    flag: 'reviews',
    commands: ['seed', 'up'],
  }),
  imageMaxPixels: setting.int({
    env: 'FLEET_IMAGE_MAX_PIXELS',
    doc: 'Largest image (width x height) the thumbnail job decodes; larger ones fail as decompression bombs.',
    default: 40_000_000,
    min: 1,
    max: 268_402_689,
    unit: 'pixels',
  }),
  imageThreads: setting.int({
    env: 'FLEET_IMAGE_THREADS',
    doc: "libvips threads one thumbnail job renders with (0: one per core). 1 (sharp's own default on glibc Linux) keeps an upload storm to about one core per worker process; raise it on a machine of its own.",
    default: 1,
    min: 0,
    max: 256,
    unit: 'threads',
    flag: 'image-threads',
    commands: ['worker'],
  }),
  imageMaxBytes: setting.bytes({
    env: 'FLEET_IMAGE_MAX_BYTES',
    doc: 'Largest product image upload (PUT /api/products/:id/image); larger: 413.',
    default: '10mb',
  }),
  recommendationsCron: setting.string({
    env: 'FLEET_RECOMMENDATIONS_CRON',
    doc: 'When workers recompute the shop recommendations (cron, server time); `off` disables the schedule.',
    default: '0 3 * * *',
    pattern: /^(off|(\S+\s+){4,5}\S+)$/,
    hint: 'expected a cron expression such as "0 3 * * *" or off',
  }),
}

/** The resolved values of the shop's settings. */
export type ShopSettings = SettingsOf<typeof shopSettings>

/** The shop's settings out of a process's config (`deps.config`, `ctx.config`). */
export function shopConfig(config: object): ShopSettings {
  return appSettings(shopSettings, config)
}
