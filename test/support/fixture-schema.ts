/**
 * The core's own fixture schema: a small catalog (users, categories, products, reviews) that the tests of
 * the cache, the web server, the jobs and the dashboard read and write. It belongs to the tests, not to the
 * demo shop: a change to the shop's tables cannot break a core test, and a core test needs no shop code.
 * The shop's own tests migrate with the shop's migrations instead (`{ app: shopApp }`).
 */
import type { Migration } from '../../src/db/migrations/index.js'

export const coreFixture: Migration = {
  id: 'test_001_core_fixture',
  up: `
    CREATE TABLE users (
      id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      email         text NOT NULL UNIQUE,
      password_hash text NOT NULL,
      role          text NOT NULL DEFAULT 'customer',
      created_at    timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE categories (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      slug        text NOT NULL UNIQUE,
      name        text NOT NULL
    );
    CREATE TABLE products (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      slug         text NOT NULL UNIQUE,
      name         text NOT NULL,
      description  text NOT NULL DEFAULT '',
      price_cents  integer NOT NULL CHECK (price_cents >= 0),
      stock        integer NOT NULL DEFAULT 0 CHECK (stock >= 0),
      category_id  bigint NOT NULL REFERENCES categories (id),
      created_at   timestamptz NOT NULL DEFAULT now(),
      updated_at   timestamptz NOT NULL DEFAULT now(),
      version      integer NOT NULL DEFAULT 1
    );
    CREATE TABLE reviews (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      product_id  bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
      user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      rating      smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
      body        text NOT NULL DEFAULT '',
      created_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX reviews_product_idx ON reviews (product_id, id);
  `,
}
