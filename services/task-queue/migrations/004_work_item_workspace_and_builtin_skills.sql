-- Up Migration
-- A task's workspace is its work item's, as the original resolved it: the
-- claim checks that one against the runtime's (not the agent's, copied at
-- enqueue). Work items can be deleted (a tombstone: deletion is final, and a
-- late report cannot bring the item back), issues carry their number (the
-- "ABC-42" identifiers of the user routes), autopilot runs their autopilot
-- (whose deletion ends them too). The product's built-in skills are stored
-- once, versioned, and the claim says which version is current so each
-- replica's cached copy is refreshed without a query of its own.

ALTER TABLE work_item DROP CONSTRAINT work_item_kind_check;
ALTER TABLE work_item ADD CONSTRAINT work_item_kind_check
  CHECK (kind IN ('issue', 'chat_session', 'autopilot_run', 'autopilot'));
-- A tombstone of an item never recorded has no workspace; a live item always has one.
ALTER TABLE work_item ALTER COLUMN workspace_id DROP NOT NULL;
ALTER TABLE work_item
  ADD COLUMN number integer NULL CHECK (number > 0),
  ADD COLUMN parent_id uuid NULL,
  ADD COLUMN deleted_at timestamptz NULL;
ALTER TABLE work_item ADD CONSTRAINT work_item_live_has_workspace CHECK (deleted_at IS NOT NULL OR workspace_id IS NOT NULL);
-- Issue identifiers: (workspace, number) of live issues. Not unique: a
-- product that renumbers must not have its reports refused; the newest wins.
CREATE INDEX work_item_issue_number ON work_item (workspace_id, number, updated_at DESC)
  WHERE kind = 'issue' AND number IS NOT NULL AND deleted_at IS NULL;
-- The runs of an autopilot (its deletion cancels their tasks).
CREATE INDEX work_item_autopilot_runs ON work_item (parent_id) WHERE kind = 'autopilot_run' AND parent_id IS NOT NULL;
-- The tasks of an autopilot run (cancelled when it is deleted).
CREATE INDEX task_autopilot_run ON task (autopilot_run_id) WHERE autopilot_run_id IS NOT NULL;

-- The one built-in skill set: [{name, description, content, files: [{path, content}]}].
CREATE TABLE builtin_skill_set (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  version bigint NOT NULL CHECK (version > 0),
  skills jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- The contract's task workspace resolution (§0.1), over what the product
-- recorded: the first link that resolves wins, in the order issue, chat
-- session, autopilot run (its autopilot's workspace, which the product
-- records on the run), quick-create context. A link recorded deleted does
-- not resolve (the original's row is gone), so the next one is tried; a
-- task whose links are all gone resolves to NULL. A link the product never
-- recorded resolves to the workspace the task was queued in (the agent's):
-- nothing says otherwise. So does a task with no link at all.
CREATE FUNCTION task_workspace(t task) RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
  v_workspace uuid;
  v_gone boolean;
BEGIN
  IF t.issue_id IS NOT NULL THEN
    SELECT w.workspace_id, w.deleted_at IS NOT NULL INTO v_workspace, v_gone
    FROM work_item w WHERE w.kind = 'issue' AND w.id = t.issue_id;
    IF NOT FOUND THEN RETURN t.workspace_id; END IF;
    IF NOT v_gone THEN RETURN v_workspace; END IF;
  END IF;
  IF t.chat_session_id IS NOT NULL THEN
    SELECT w.workspace_id, w.deleted_at IS NOT NULL INTO v_workspace, v_gone
    FROM work_item w WHERE w.kind = 'chat_session' AND w.id = t.chat_session_id;
    IF NOT FOUND THEN RETURN t.workspace_id; END IF;
    IF NOT v_gone THEN RETURN v_workspace; END IF;
  END IF;
  IF t.autopilot_run_id IS NOT NULL THEN
    SELECT w.workspace_id, w.deleted_at IS NOT NULL OR a.deleted_at IS NOT NULL INTO v_workspace, v_gone
    FROM work_item w LEFT JOIN work_item a ON a.kind = 'autopilot' AND a.id = w.parent_id
    WHERE w.kind = 'autopilot_run' AND w.id = t.autopilot_run_id;
    IF NOT FOUND THEN RETURN t.workspace_id; END IF;
    IF NOT v_gone THEN RETURN v_workspace; END IF;
  END IF;
  IF t.context ->> 'type' = 'quick_create' THEN
    IF t.context ->> 'workspace_id' ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' THEN
      RETURN (t.context ->> 'workspace_id')::uuid;
    END IF;
    RETURN NULL;
  END IF;
  IF t.issue_id IS NULL AND t.chat_session_id IS NULL AND t.autopilot_run_id IS NULL THEN
    RETURN t.workspace_id;
  END IF;
  RETURN NULL;
END
$$;

-- The claim of migration 002, with two changes: the isolation check compares
-- the task's resolved workspace (task_workspace) with the runtime's, and the
-- token is bound to it; and a claim that hands out a task reports the
-- current built-in skill set version. Same arguments, so callers of the
-- previous version keep working while replicas roll over.
DROP FUNCTION claim_task(uuid, interval, integer, uuid, text, uuid, interval);

CREATE FUNCTION claim_task(
  p_runtime_id uuid,
  p_recovery_window interval,
  p_default_limit integer,
  p_runtime_workspace_id uuid,
  p_token_hash text,
  p_token_user_id uuid,
  p_token_ttl interval,
  OUT claimed task,
  OUT redelivered boolean,
  OUT contended boolean,
  OUT isolation_failed boolean,
  OUT token_minted boolean,
  OUT prior_session_id text,
  OUT prior_work_dir text,
  OUT prior_runtime_id uuid,
  OUT resolved_workspace_id uuid,
  OUT builtin_skills_version bigint
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
  isolation_failed := false;
  token_minted := false;

  -- A task dispatched here but never started within the window: its answer was lost.
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
  ELSE
    -- Agent by agent, in the order of their best queued task here. The
    -- per-agent advisory lock makes the in-flight count (across all runtimes)
    -- and the sibling rule race-free; a lock held by another claim is skipped
    -- and reported as `contended` so the caller tries again.
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
      EXIT WHEN FOUND;
    END LOOP;
    IF claimed.id IS NULL THEN
      RETURN;
    END IF;
  END IF;

  -- A task of another workspace is never handed out (the caller cancels it);
  -- nor is one whose work items are all gone (it resolves to nothing).
  resolved_workspace_id := task_workspace(claimed);
  IF resolved_workspace_id IS DISTINCT FROM p_runtime_workspace_id THEN
    isolation_failed := true;
    RETURN;
  END IF;

  SELECT b.version INTO builtin_skills_version FROM builtin_skill_set b;
  builtin_skills_version := coalesce(builtin_skills_version, 0);

  IF p_token_hash IS NOT NULL AND p_token_user_id IS NOT NULL THEN
    INSERT INTO task_token (token_hash, task_id, agent_id, workspace_id, user_id, expires_at)
    VALUES (p_token_hash, claimed.id, claimed.agent_id, resolved_workspace_id, p_token_user_id, now() + p_token_ttl);
    token_minted := true;
  END IF;

  -- Where a resumed run continues: the latest resumable earlier task of the
  -- same agent and issue, or of the same chat session.
  IF NOT claimed.force_fresh_session AND (claimed.issue_id IS NOT NULL OR claimed.chat_session_id IS NOT NULL) THEN
    SELECT p.session_id, p.work_dir, p.runtime_id INTO prior_session_id, prior_work_dir, prior_runtime_id
    FROM task p
    WHERE p.id <> claimed.id AND p.session_id IS NOT NULL
      AND (CASE WHEN claimed.issue_id IS NOT NULL
                THEN p.agent_id = claimed.agent_id AND p.issue_id = claimed.issue_id
                ELSE p.chat_session_id = claimed.chat_session_id END)
      AND (p.status = 'completed'
           OR (p.status = 'failed'
               AND coalesce(p.failure_reason, '') NOT IN ('iteration_limit', 'agent_fallback_message', 'api_invalid_request', 'codex_semantic_inactivity')
               AND NOT (coalesce(p.error, '') LIKE '%400%' AND coalesce(p.error, '') LIKE '%invalid_request_error%')))
    ORDER BY coalesce(p.completed_at, p.started_at, p.dispatched_at, p.created_at) DESC
    LIMIT 1;
  END IF;
END
$$;
