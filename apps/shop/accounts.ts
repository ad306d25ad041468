/**
 * Accounts: creating customers, checking credentials, and the admin account the runtime ensures at start.
 * Emails are compared case-insensitively (the unique index is on lower(email)) and stored lower-cased.
 */

import type { Database, SessionUser } from '@fleet-stack/fleet'
import { EmailTakenError, InvalidCredentialsError } from './errors.js'
import { dummyHash, hashPassword, verifyPassword } from './passwords.js'

const UNIQUE_VIOLATION = '23505'

interface UserRow {
  [key: string]: unknown
  id: number
  email: string
  role: 'customer' | 'admin'
  password_hash: string
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase()
}

function toUser(row: UserRow): SessionUser {
  return { id: row.id, email: row.email, role: row.role }
}

/** Creates a customer; EmailTakenError (409) when the email is in use. */
export async function createUser(db: Database, email: string, password: string): Promise<SessionUser> {
  const normalized = normalizeEmail(email)
  const hash = await hashPassword(password)
  try {
    const { rows } = await db.query<UserRow>(
      `INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id, email, role, password_hash`,
      [normalized, hash],
    )
    return toUser(rows[0])
  } catch (err) {
    if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new EmailTakenError(normalized)
    throw err
  }
}

/** The user with these credentials; InvalidCredentialsError (401) otherwise, in about the same time. */
export async function authenticate(db: Database, email: string, password: string): Promise<SessionUser> {
  const { rows } = await db.query<UserRow>(
    'SELECT id, email, role, password_hash FROM users WHERE lower(email) = $1',
    [normalizeEmail(email)],
  )
  const row = rows[0]
  const ok = await verifyPassword(password, row?.password_hash ?? (await dummyHash()))
  if (!row || !ok) throw new InvalidCredentialsError()
  return toUser(row)
}

/** The user with this id, if it exists. */
export async function getUser(db: Database, id: number): Promise<SessionUser | undefined> {
  const { rows } = await db.query<UserRow>('SELECT id, email, role, password_hash FROM users WHERE id = $1', [
    id,
  ])
  return rows[0] ? toUser(rows[0]) : undefined
}

/**
 * When FLEET_ADMIN_EMAIL and FLEET_ADMIN_PASSWORD are set, makes that account an admin with that password
 * (an upsert: several web servers may start at once). Leaves the hash alone when the password still
 * matches, so restarts do not rewrite it. Returns the admin, or undefined when the settings are unset.
 */
export async function ensureAdmin(
  db: Database,
  config: { adminEmail?: string; adminPassword?: string },
): Promise<SessionUser | undefined> {
  if (!config.adminEmail || !config.adminPassword) return undefined
  const email = normalizeEmail(config.adminEmail)
  const { rows } = await db.query<UserRow>(
    'SELECT id, email, role, password_hash FROM users WHERE lower(email) = $1',
    [email],
  )
  const existing = rows[0]
  if (existing?.role === 'admin' && (await verifyPassword(config.adminPassword, existing.password_hash)))
    return toUser(existing)
  const hash = await hashPassword(config.adminPassword)
  const upserted = await db.query<UserRow>(
    `INSERT INTO users (email, password_hash, role) VALUES ($1, $2, 'admin')
     ON CONFLICT ((lower(email))) DO UPDATE
       SET password_hash = EXCLUDED.password_hash, role = 'admin', updated_at = now()
     RETURNING id, email, role, password_hash`,
    [email, hash],
  )
  return toUser(upserted.rows[0])
}
