import type { Migration } from './index.js'

/**
 * Job records (src/jobs/): the outcome of every durable job, keyed by its id, written in the transaction
 * that applies the job's effects, so a job that runs twice takes effect once. Outlives Redis retention.
 */
export const jobsSchema: Migration = {
  id: '005_jobs',
  up: `
    CREATE TABLE fleet_jobs (
      id           text PRIMARY KEY,
      type         text NOT NULL,
      owner        text NOT NULL,
      payload_hash text,
      state        text NOT NULL CHECK (state IN ('completed', 'failed', 'cancelled')),
      result       jsonb,
      error        jsonb,
      attempts     integer NOT NULL DEFAULT 0,
      created_at   timestamptz NOT NULL,
      started_at   timestamptz,
      finished_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX fleet_jobs_type_finished_idx ON fleet_jobs (type, finished_at);
  `,
}
