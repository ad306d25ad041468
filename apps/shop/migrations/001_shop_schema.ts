import type { Migration } from '@fleet-stack/fleet'
/** The shop's first tables: accounts, the catalog and reviews. */
export const shopSchema: Migration = {
  id: '001_shop_schema',
  up: `
    CREATE TABLE users (
      id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      email         text NOT NULL,
      password_hash text NOT NULL,
      role          text NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'admin')),
      created_at    timestamptz NOT NULL DEFAULT now(),
      updated_at    timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX users_email_key ON users (lower(email));

    CREATE TABLE categories (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      slug        text NOT NULL UNIQUE,
      name        text NOT NULL,
      created_at  timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE products (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      slug         text NOT NULL UNIQUE,
      name         text NOT NULL,
      description  text NOT NULL DEFAULT '',
      price_cents  integer NOT NULL CHECK (price_cents >= 0),
      currency     char(3) NOT NULL DEFAULT 'EUR',
      stock        integer NOT NULL DEFAULT 0 CHECK (stock >= 0),
      category_id  bigint NOT NULL REFERENCES categories (id),
      created_at   timestamptz NOT NULL DEFAULT now(),
      updated_at   timestamptz NOT NULL DEFAULT now(),
      version      integer NOT NULL DEFAULT 1,
      search       tsvector GENERATED ALWAYS AS (
                     to_tsvector('simple', name || ' ' || description)) STORED
    );
    -- Keyset pagination reads (sort key, id) in both directions, with and without a category filter.
    CREATE INDEX products_category_idx ON products (category_id, id);
    CREATE INDEX products_price_idx ON products (price_cents, id);
    CREATE INDEX products_name_idx ON products (name, id);
    CREATE INDEX products_created_idx ON products (created_at, id);
    CREATE INDEX products_category_price_idx ON products (category_id, price_cents, id);
    CREATE INDEX products_category_name_idx ON products (category_id, name, id);
    CREATE INDEX products_category_created_idx ON products (category_id, created_at, id);
    CREATE INDEX products_search_idx ON products USING gin (search);

    CREATE TABLE reviews (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      product_id  bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
      user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      rating      smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
      body        text NOT NULL DEFAULT '',
      created_at  timestamptz NOT NULL DEFAULT now()
    );
    -- One review per user and product.
    CREATE UNIQUE INDEX reviews_product_user_key ON reviews (product_id, user_id);
    CREATE INDEX reviews_product_idx ON reviews (product_id, created_at DESC, id DESC);
    CREATE INDEX reviews_user_idx ON reviews (user_id);
  `,
}
