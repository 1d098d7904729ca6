-- Up Migration
-- The claim does all of its writing in one statement: besides dispatching,
-- it checks the task's workspace against the runtime's, mints the task token
-- (hash given by the caller) when it has someone to act for, and returns the
-- resume pointer of the latest resumable earlier task. One round trip per
-- claim instead of six.

DROP FUNCTION claim_task(uuid, interval, integer);

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
  OUT prior_runtime_id uuid
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

  -- A task of another workspace is never handed out (the caller cancels it).
  IF claimed.workspace_id IS DISTINCT FROM p_runtime_workspace_id THEN
    isolation_failed := true;
    RETURN;
  END IF;

  IF p_token_hash IS NOT NULL AND p_token_user_id IS NOT NULL THEN
    INSERT INTO task_token (token_hash, task_id, agent_id, workspace_id, user_id, expires_at)
    VALUES (p_token_hash, claimed.id, claimed.agent_id, claimed.workspace_id, p_token_user_id, now() + p_token_ttl);
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
