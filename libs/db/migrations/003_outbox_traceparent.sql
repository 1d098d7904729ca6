-- Up Migration
-- The W3C trace context (`traceparent`) active when an event was written, so
-- the relay can hand it to consumers as a NATS header and their spans join
-- the producer's trace. Null when tracing was off; rows written before this
-- migration simply have none. Parked rows keep theirs through a requeue.
ALTER TABLE outbox ADD COLUMN traceparent text;
ALTER TABLE outbox_parked ADD COLUMN traceparent text;
