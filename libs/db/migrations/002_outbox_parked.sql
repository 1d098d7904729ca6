-- Up Migration
-- Events the relay can never publish (encoded size over NATS's max_payload, or a
-- publish error that will not go away), moved out of the outbox in the relay's
-- transaction so the events behind them keep flowing. Same columns as outbox,
-- plus why and when. Nothing drains this table by itself: the metrics
-- outbox_parked_total / outbox_parked alert an operator, who fixes the cause and
-- requeues the rows (requeueParked) or deletes them.
CREATE TABLE outbox_parked (
  id uuid PRIMARY KEY,
  event_type text NOT NULL,
  payload bytea NOT NULL,
  created_at timestamptz NOT NULL,
  reason text NOT NULL,
  parked_at timestamptz NOT NULL DEFAULT now()
);
