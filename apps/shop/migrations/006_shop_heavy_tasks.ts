/**
 * The shop's heavy tasks (src/shop/images.ts, src/shop/recommendations.ts): product images with their
 * rendered thumbnails, and the recommendations computed from reviews.
 */
import type { Migration } from '@fleet-stack/fleet'
export const shopHeavyTasks: Migration = {
  id: '006_shop_heavy_tasks',
  up: `
    CREATE TABLE product_images (
      product_id   bigint PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,
      version      integer NOT NULL DEFAULT 1,
      format       text NOT NULL CHECK (format IN ('jpeg', 'png', 'webp')),
      width        integer NOT NULL,
      height       integer NOT NULL,
      bytes        integer NOT NULL,
      original     bytea NOT NULL,
      state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'ready', 'failed')),
      job_id       text,
      error        jsonb,
      uploaded_at  timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE product_thumbnails (
      product_id   bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
      size         integer NOT NULL CHECK (size IN (64, 256, 1024)),
      version      integer NOT NULL,
      width        integer NOT NULL,
      height       integer NOT NULL,
      etag         text NOT NULL,
      data         bytea NOT NULL,
      created_at   timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (product_id, size)
    );

    CREATE TABLE product_recommendations (
      product_id      bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
      rank            smallint NOT NULL,
      recommended_id  bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
      shared_users    integer NOT NULL,
      PRIMARY KEY (product_id, rank)
    );

    CREATE TABLE recommendation_runs (
      job_id       text PRIMARY KEY,
      products     integer NOT NULL,
      pairs        integer NOT NULL,
      per_product  integer NOT NULL,
      computed_at  timestamptz NOT NULL DEFAULT now()
    );
  `,
}
