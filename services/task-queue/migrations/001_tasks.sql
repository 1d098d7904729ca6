-- Up Migration
-- Tasks and everything hanging off them. Agents, runtimes and workspaces are
-- other services' rows: referenced by id, never by foreign key.

CREATE TABLE task (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id uuid NOT NULL,
  agent_id uuid NOT NULL,
  runtime_id uuid NOT NULL,
  issue_id uuid NULL,
  chat_session_id uuid NULL,
  autopilot_run_id uuid NULL,
  trigger_comment_id uuid NULL,
  trigger_summary text NULL,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN
    ('queued', 'dispatched', 'running', 'waiting_local_directory', 'completed', 'failed', 'cancelled')),
  priority integer NOT NULL DEFAULT 0,
  -- The quick-create payload ({type: "quick_create", prompt, ...}) when there is one.
  context jsonb NULL,
  -- What the enqueuer supplied for the claim answer (TaskContext as JSON).
  claim_context jsonb NOT NULL DEFAULT '{}'::jsonb,
  dispatched_at timestamptz NULL,
  started_at timestamptz NULL,
  completed_at timestamptz NULL,
  result jsonb NULL,
  error text NULL,
  failure_reason text NULL,
  -- The resume pointer.
  session_id text NULL,
  work_dir text NULL,
  wait_reason text NULL,
  force_fresh_session boolean NOT NULL DEFAULT false,
  initiator_user_id uuid NULL,
  attempt integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
  max_attempts integer NOT NULL DEFAULT 2 CHECK (max_attempts >= 1),
  parent_task_id uuid NULL REFERENCES task (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- At most one pending task per (issue, agent); NULL issues never collide.
CREATE UNIQUE INDEX task_one_pending_per_issue_agent
  ON task (issue_id, agent_id) WHERE status IN ('queued', 'dispatched');
-- Claim: a runtime's queued tasks in claim order.
CREATE INDEX task_claim_candidates ON task (runtime_id, priority DESC, created_at) WHERE status = 'queued';
-- Claim, recovery, offline handling: a runtime's in-flight tasks; an agent's in-flight count.
CREATE INDEX task_runtime_active ON task (runtime_id) WHERE status IN ('dispatched', 'running', 'waiting_local_directory');
CREATE INDEX task_agent_in_flight ON task (agent_id) WHERE status IN ('dispatched', 'running', 'waiting_local_directory');
-- Timeouts.
CREATE INDEX task_dispatched_at ON task (dispatched_at) WHERE status = 'dispatched';
CREATE INDEX task_started_at ON task (started_at) WHERE status = 'running';
CREATE INDEX task_queued_created_at ON task (created_at) WHERE status = 'queued';
-- Lookups by work item, resume and retries.
CREATE INDEX task_issue ON task (issue_id, agent_id, created_at) WHERE issue_id IS NOT NULL;
CREATE INDEX task_chat_session ON task (chat_session_id, created_at) WHERE chat_session_id IS NOT NULL;
CREATE INDEX task_workspace ON task (workspace_id, created_at);
CREATE INDEX task_parent ON task (parent_task_id) WHERE parent_task_id IS NOT NULL;

-- Concurrency limit per agent (a projection of the registry's agents).
CREATE TABLE agent_limit (
  agent_id uuid PRIMARY KEY,
  max_concurrent_tasks integer NOT NULL CHECK (max_concurrent_tasks > 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE task_message (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  task_id uuid NOT NULL REFERENCES task (id) ON DELETE CASCADE,
  seq integer NOT NULL,
  type text NOT NULL,
  tool text NULL,
  content text NULL,
  input jsonb NULL,
  output text NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX task_message_task_seq ON task_message (task_id, seq);

CREATE TABLE task_usage (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  task_id uuid NOT NULL REFERENCES task (id) ON DELETE CASCADE,
  provider text NOT NULL DEFAULT '',
  model text NOT NULL,
  input_tokens bigint NOT NULL DEFAULT 0,
  output_tokens bigint NOT NULL DEFAULT 0,
  cache_read_tokens bigint NOT NULL DEFAULT 0,
  cache_write_tokens bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NULL DEFAULT now(),
  CONSTRAINT task_usage_task_provider_model_key UNIQUE (task_id, provider, model)
);

-- mat_ tokens: only the SHA-256 hex is kept.
CREATE TABLE task_token (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  token_hash text NOT NULL,
  task_id uuid NOT NULL REFERENCES task (id) ON DELETE CASCADE,
  agent_id uuid NOT NULL,
  workspace_id uuid NOT NULL,
  user_id uuid NOT NULL,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT task_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX task_token_task ON task_token (task_id);

-- Issues whose first completion was announced.
CREATE TABLE issue_first_execution (
  issue_id uuid PRIMARY KEY,
  task_id uuid NOT NULL,
  executed_at timestamptz NOT NULL DEFAULT now()
);

-- Issues, chat sessions and autopilot runs as the product reports them, for
-- the daemon's disk GC checks.
CREATE TABLE work_item (
  kind text NOT NULL CHECK (kind IN ('issue', 'chat_session', 'autopilot_run')),
  id uuid NOT NULL,
  workspace_id uuid NOT NULL,
  status text NOT NULL,
  updated_at timestamptz NOT NULL,
  completed_at timestamptz NULL,
  PRIMARY KEY (kind, id)
);

-- The claim, in one statement. First a task dispatched to this runtime but
-- never started within the recovery window is handed out again (its answer
-- was lost). Otherwise, agent by agent in the order of their best queued task
-- here, under a per-agent advisory lock (so the agent's in-flight count,
-- across all runtimes, cannot be raced past its limit), the agent's best
-- queued task on THIS runtime that no in-flight sibling blocks (same issue,
-- same chat session, or both quick-create shaped) moves to dispatched.
-- `contended` says an agent was skipped because another claim held its lock:
-- the caller then tries again rather than report an empty queue.
CREATE FUNCTION claim_task(
  p_runtime_id uuid,
  p_recovery_window interval,
  p_default_limit integer,
  OUT claimed task,
  OUT redelivered boolean,
  OUT contended boolean
) LANGUAGE plpgsql
-- Resolve the tables in this service's schema whatever the caller's search_path.
SET search_path FROM CURRENT
AS $$
DECLARE
  v_agent uuid;
  v_limit integer;
  v_in_flight integer;
BEGIN
  redelivered := false;
  contended := false;

  UPDATE task t SET dispatched_at = now(), updated_at = now()
  WHERE t.id = (
    SELECT r.id FROM task r
    WHERE r.runtime_id = p_runtime_id AND r.status = 'dispatched' AND r.started_at IS NULL
      AND r.dispatched_at < now() - p_recovery_window
    ORDER BY r.priority DESC, r.dispatched_at, r.id
    LIMIT 1
    FOR UPDATE SKIP LOCKED)
  RETURNING t.* INTO claimed;
  IF FOUND THEN
    redelivered := true;
    RETURN;
  END IF;

  FOR v_agent IN
    SELECT q.agent_id FROM task q
    WHERE q.runtime_id = p_runtime_id AND q.status = 'queued'
    GROUP BY q.agent_id
    ORDER BY max(q.priority) DESC, min(q.created_at)
  LOOP
    IF NOT pg_try_advisory_xact_lock(21585, hashtext(v_agent::text)) THEN
      contended := true;
      CONTINUE;
    END IF;
    SELECT count(*) INTO v_in_flight FROM task f
    WHERE f.agent_id = v_agent AND f.status IN ('dispatched', 'running', 'waiting_local_directory');
    SELECT coalesce(max(l.max_concurrent_tasks), p_default_limit) INTO v_limit FROM agent_limit l WHERE l.agent_id = v_agent;
    CONTINUE WHEN v_in_flight >= v_limit;

    UPDATE task t SET status = 'dispatched', dispatched_at = now(), updated_at = now()
    WHERE t.id = (
      SELECT c.id FROM task c
      WHERE c.runtime_id = p_runtime_id AND c.agent_id = v_agent AND c.status = 'queued'
        AND NOT EXISTS (
          SELECT 1 FROM task s
          WHERE s.agent_id = v_agent AND s.status IN ('dispatched', 'running', 'waiting_local_directory')
            AND ((c.issue_id IS NOT NULL AND s.issue_id = c.issue_id)
              OR (c.chat_session_id IS NOT NULL AND s.chat_session_id = c.chat_session_id)
              OR (c.issue_id IS NULL AND c.chat_session_id IS NULL AND c.autopilot_run_id IS NULL
                  AND s.issue_id IS NULL AND s.chat_session_id IS NULL AND s.autopilot_run_id IS NULL)))
      ORDER BY c.priority DESC, c.created_at, c.id
      LIMIT 1
      FOR UPDATE SKIP LOCKED)
    RETURNING t.* INTO claimed;
    IF FOUND THEN
      RETURN;
    END IF;
  END LOOP;
END
$$;
