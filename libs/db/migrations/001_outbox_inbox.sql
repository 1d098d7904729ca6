-- Up Migration
-- Kit tables, created in the schema of every service that uses the kit.

-- Events written in the same transaction as the state change they describe;
-- the relay publishes them to JetStream (message id = id) and deletes them.
CREATE TABLE outbox (
  id uuid PRIMARY KEY,
  event_type text NOT NULL,
  payload bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX outbox_created_at_idx ON outbox (created_at, id);

-- Events a consumer of this service has already applied, so redelivery is harmless.
CREATE TABLE inbox (
  consumer text NOT NULL,
  event_id uuid NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
CREATE INDEX inbox_processed_at_idx ON inbox (processed_at);
