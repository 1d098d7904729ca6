-- Up Migration
-- What liveness knows of each runtime: its workspace (learned from registry
-- events), whether it is online, and when it was last seen (flushed in bulk).
CREATE TABLE runtime_liveness (
  runtime_id uuid PRIMARY KEY,
  workspace_id uuid NOT NULL,
  status text NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'offline')),
  -- Deliberately not indexed: the bulk flush only touches this column, so
  -- its updates stay HOT (no index maintenance, no bloat).
  last_seen_at timestamptz NULL,
  status_changed_at timestamptz NOT NULL DEFAULT now()
);

-- Actions queued for a runtime's daemon, popped by its heartbeats.
CREATE TABLE pending_action (
  id text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
  runtime_id uuid NOT NULL,
  workspace_id uuid NOT NULL,
  kind text NOT NULL CHECK (kind IN ('update', 'model_list', 'local_skills', 'local_skill_import')),
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'timeout', 'conflict')),
  request jsonb NOT NULL DEFAULT '{}'::jsonb,
  result jsonb NULL,
  error text NULL,
  requested_by uuid NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  run_started_at timestamptz NULL
);
CREATE INDEX pending_action_pop ON pending_action (runtime_id, kind, created_at) WHERE status = 'pending';
CREATE INDEX pending_action_created ON pending_action (created_at);
-- One update at a time per runtime.
CREATE UNIQUE INDEX pending_action_one_active_update
  ON pending_action (runtime_id) WHERE kind = 'update' AND status IN ('pending', 'running');
