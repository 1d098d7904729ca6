-- Up Migration
-- The retention job deletes finished tasks oldest first, by when they
-- finished; without this it would scan every task on each pass. Partial, so
-- the hot paths (queued, dispatched, running rows) never maintain it until a
-- task finishes. Task tokens need no index: every terminal transition
-- deletes its task's tokens, so the table only ever holds live tasks' tokens.
CREATE INDEX task_finished_at ON task (completed_at) WHERE status IN ('completed', 'failed', 'cancelled');
