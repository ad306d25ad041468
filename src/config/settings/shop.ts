import { setting } from '../define.js'

/** The reference application: accounts, sessions, seed. */
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
  sessionCookie: setting.string({
    env: 'FLEET_SESSION_COOKIE',
    doc: 'Name of the session cookie.',
    default: 'fleet_sid',
    pattern: /^[A-Za-z0-9_-]{1,64}$/,
    hint: 'expected 1-64 characters from A-Z a-z 0-9 _ -',
  }),
  sessionTtl: setting.duration({
    env: 'FLEET_SESSION_TTL',
    doc: 'Idle lifetime of a session; every request that uses it starts the period again (rolling).',
    default: '24h',
    min: '1s',
  }),
  seedOnStart: setting.bool({
    env: 'FLEET_SEED',
    doc: '`fleet up` seeds the catalog when the database has no products.',
    default: true,
    flag: 'seed',
    commands: ['up'],
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
}
