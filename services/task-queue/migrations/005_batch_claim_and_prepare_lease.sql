-- Up Migration
-- What today's daemon needs of the claim (contract §13.2–§13.4):
--
-- * A prepare lease. A claimed task is prepared by the daemon (repos,
--   skills, worktree) for up to 5 minutes before it starts, and the daemon
--   extends the lease every 15 s meanwhile. The lost-answer re-delivery and
--   the dispatch timeout leave a task alone while its lease runs, so a slow
--   prepare is never handed out a second time. Set (45 s ahead) by the
--   claim, the re-delivery, wait-local-directory and prepare-lease; cleared
--   when the task leaves dispatched/waiting_local_directory (start, every
--   terminal transition, a claim put back): a trigger keeps that invariant
--   for every statement that moves a task on, present and future.
-- * A delivery receipt: the comments a claim answer carried (the trigger
--   comment of a comment-backed task), written in the claim's own statement.
-- * The batch claim, claim_tasks: up to N tasks across a daemon's runtimes in
--   one statement. The per-runtime claim is its case N = 1 with one runtime.
--   claim_task (migrations 002 and 004) stays for replicas still running
--   the previous release; it knows no lease, and goes in a later migration.

ALTER TABLE task
  ADD COLUMN prepare_lease_expires_at timestamptz NULL,
  ADD COLUMN delivered_comment_ids uuid[] NOT NULL DEFAULT '{}';

-- Re-delivery: a runtime set's dispatched, never-started tasks by age.
CREATE INDEX task_redelivery ON task (runtime_id, dispatched_at, priority DESC)
  WHERE status = 'dispatched' AND started_at IS NULL;
-- Fresh claims: an agent's queued tasks in claim order (claim_tasks takes
-- them agent by agent, over a set of runtimes no single-runtime index orders).
CREATE INDEX task_agent_queued ON task (agent_id, priority DESC, created_at, id) WHERE status = 'queued';

CREATE FUNCTION task_clear_prepare_lease() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  NEW.prepare_lease_expires_at := NULL;
  RETURN NEW;
END
$$;

-- Only a task being prepared holds a lease.
CREATE TRIGGER task_prepare_lease_ends
  BEFORE UPDATE OF status ON task
  FOR EACH ROW
  WHEN (NEW.prepare_lease_expires_at IS NOT NULL AND NEW.status NOT IN ('dispatched', 'waiting_local_directory'))
  EXECUTE FUNCTION task_clear_prepare_lease();

-- What a claim answer needs beyond the dispatched row (as claim_task of
-- migration 004 computed it): the isolation check of the task's resolved
-- workspace against its runtime's, the task token (minted when the runtime
-- has an owner to act for; the caller handles the others), the resume
-- pointer of the latest resumable earlier task, and whether the latest
-- earlier run that started and ended reported its session's rollout
-- missing (session_rollout_missing comes with migration 006: a plpgsql body
-- resolves its columns when it runs, after every migration has).
CREATE FUNCTION claim_finish(
  p_row task,
  p_redelivered boolean,
  p_runtime_workspace_id uuid,
  p_token_user_id uuid,
  p_token_hash text,
  p_token_ttl interval,
  p_builtin_skills_version bigint,
  OUT claimed task,
  OUT redelivered boolean,
  OUT isolation_failed boolean,
  OUT token_minted boolean,
  OUT prior_session_id text,
  OUT prior_work_dir text,
  OUT prior_runtime_id uuid,
  OUT resolved_workspace_id uuid,
  OUT builtin_skills_version bigint,
  OUT prior_session_resume_unavailable boolean
) LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  claimed := p_row;
  prior_session_resume_unavailable := false;
  redelivered := p_redelivered;
  isolation_failed := false;
  token_minted := false;

  -- A task of another workspace is never handed out (the caller cancels it);
  -- nor is one whose work items are all gone (it resolves to nothing).
  resolved_workspace_id := task_workspace(p_row);
  IF resolved_workspace_id IS DISTINCT FROM p_runtime_workspace_id THEN
    isolation_failed := true;
    RETURN;
  END IF;
  builtin_skills_version := p_builtin_skills_version;

  IF p_token_hash IS NOT NULL AND p_token_user_id IS NOT NULL THEN
    INSERT INTO task_token (token_hash, task_id, agent_id, workspace_id, user_id, expires_at)
    VALUES (p_token_hash, p_row.id, p_row.agent_id, resolved_workspace_id, p_token_user_id, now() + p_token_ttl);
    token_minted := true;
  END IF;

  IF NOT p_row.force_fresh_session AND (p_row.issue_id IS NOT NULL OR p_row.chat_session_id IS NOT NULL) THEN
    SELECT p.session_id, p.work_dir, p.runtime_id INTO prior_session_id, prior_work_dir, prior_runtime_id
    FROM task p
    WHERE p.id <> p_row.id AND p.session_id IS NOT NULL
      AND (CASE WHEN p_row.issue_id IS NOT NULL
                THEN p.agent_id = p_row.agent_id AND p.issue_id = p_row.issue_id
                ELSE p.chat_session_id = p_row.chat_session_id END)
      AND (p.status = 'completed'
           OR (p.status = 'failed'
               AND coalesce(p.failure_reason, '') NOT IN ('iteration_limit', 'agent_fallback_message', 'api_invalid_request', 'codex_semantic_inactivity')
               AND NOT (coalesce(p.error, '') LIKE '%400%' AND coalesce(p.error, '') LIKE '%invalid_request_error%')))
    ORDER BY coalesce(p.completed_at, p.started_at, p.dispatched_at, p.created_at) DESC
    LIMIT 1;
  END IF;

  IF p_row.issue_id IS NOT NULL OR p_row.chat_session_id IS NOT NULL THEN
    SELECT p.session_rollout_missing INTO prior_session_resume_unavailable
    FROM task p
    WHERE p.id <> p_row.id AND p.started_at IS NOT NULL AND p.status IN ('completed', 'failed', 'cancelled')
      AND (CASE WHEN p_row.issue_id IS NOT NULL
                THEN p.agent_id = p_row.agent_id AND p.issue_id = p_row.issue_id
                ELSE p.chat_session_id = p_row.chat_session_id END)
    ORDER BY p.started_at DESC
    LIMIT 1;
    prior_session_resume_unavailable := coalesce(prior_session_resume_unavailable, false);
  END IF;
END
$$;

-- The claim of a daemon's runtimes, in one statement and one transaction.
-- The runtimes come with their workspace and owner (parallel arrays), and
-- only those the caller found online and fresh: a runtime that stopped
-- beating is handed nothing, not even a re-delivery.
--
-- 1. Re-delivery of lost answers over the whole set, at most p_max: tasks
--    dispatched here, never started, past the recovery window, whose prepare
--    lease is NULL or expired. They skip the per-agent checks (they are
--    already in flight) but count toward p_max.
-- 2. Fresh claims: agents in the order of their best queued task in the set
--    (priority desc, created_at, id), each tried once (one fresh claim per
--    agent per call, agents in p_skip_agents not at all), under a per-agent
--    advisory lock so its in-flight count across every runtime and the
--    sibling rule cannot be raced; a lock held by another claim is skipped
--    and reported as contended (the caller tries again).
-- Each task handed out gets its lease, its receipt and (claim_finish) its
-- token, the i-th from p_token_hashes. One row per task, in claim order,
-- then a last row with claimed NULL that reports the call: contended, and
-- more_work when, with fewer than p_max handed out, an agent that was handed
-- a task had room for another and queued work in the set (the one-per-call
-- rule left it for the next call).
CREATE FUNCTION claim_tasks(
  p_runtime_ids uuid[],
  p_runtime_workspace_ids uuid[],
  p_runtime_owner_ids uuid[],
  p_max integer,
  p_skip_agents uuid[],
  p_recovery_window interval,
  p_prepare_lease interval,
  p_default_limit integer,
  p_token_hashes text[],
  p_token_ttl interval
) RETURNS TABLE (
  claimed task,
  redelivered boolean,
  isolation_failed boolean,
  token_minted boolean,
  prior_session_id text,
  prior_work_dir text,
  prior_runtime_id uuid,
  resolved_workspace_id uuid,
  builtin_skills_version bigint,
  prior_session_resume_unavailable boolean,
  contended boolean,
  more_work boolean
) LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  v_row task;
  v_count integer := 0;
  v_at integer;
  v_agent uuid;
  v_limit integer;
  v_in_flight integer;
  v_contended boolean := false;
  v_more boolean := false;
  v_version bigint;
BEGIN
  IF p_max > 0 AND cardinality(p_runtime_ids) > 0 THEN
    SELECT coalesce(max(b.version), 0) INTO v_version FROM builtin_skill_set b;

    FOR v_row IN
      UPDATE task t
      SET dispatched_at = now(), prepare_lease_expires_at = now() + p_prepare_lease,
          delivered_comment_ids = CASE WHEN t.trigger_comment_id IS NULL THEN '{}'::uuid[] ELSE ARRAY[t.trigger_comment_id] END,
          updated_at = now()
      WHERE t.id IN (
        SELECT r.id FROM task r
        WHERE r.runtime_id = ANY(p_runtime_ids) AND r.status = 'dispatched' AND r.started_at IS NULL
          AND r.dispatched_at < now() - p_recovery_window
          AND (r.prepare_lease_expires_at IS NULL OR r.prepare_lease_expires_at <= now())
        ORDER BY r.priority DESC, r.dispatched_at, r.id
        LIMIT p_max
        FOR UPDATE SKIP LOCKED)
      RETURNING t.*
    LOOP
      v_count := v_count + 1;
      v_at := array_position(p_runtime_ids, v_row.runtime_id);
      RETURN QUERY SELECT f.*, false, false FROM claim_finish(
        v_row, true, p_runtime_workspace_ids[v_at], p_runtime_owner_ids[v_at], p_token_hashes[v_count], p_token_ttl, v_version) f;
    END LOOP;

    IF v_count < p_max THEN
      FOR v_agent IN
        SELECT b.agent_id FROM (
          SELECT DISTINCT ON (q.agent_id) q.agent_id, q.priority, q.created_at, q.id
          FROM task q
          WHERE q.runtime_id = ANY(p_runtime_ids) AND q.status = 'queued'
            AND q.agent_id <> ALL(coalesce(p_skip_agents, '{}'::uuid[]))
          ORDER BY q.agent_id, q.priority DESC, q.created_at, q.id) b
        ORDER BY b.priority DESC, b.created_at, b.id
      LOOP
        EXIT WHEN v_count >= p_max;
        IF NOT pg_try_advisory_xact_lock(21585, hashtext(v_agent::text)) THEN
          v_contended := true;
          CONTINUE;
        END IF;
        SELECT count(*) INTO v_in_flight FROM task f
        WHERE f.agent_id = v_agent AND f.status IN ('dispatched', 'running', 'waiting_local_directory');
        SELECT coalesce(max(l.max_concurrent_tasks), p_default_limit) INTO v_limit FROM agent_limit l WHERE l.agent_id = v_agent;
        CONTINUE WHEN v_in_flight >= v_limit;

        UPDATE task t
        SET status = 'dispatched', dispatched_at = now(), prepare_lease_expires_at = now() + p_prepare_lease,
            delivered_comment_ids = CASE WHEN t.trigger_comment_id IS NULL THEN '{}'::uuid[] ELSE ARRAY[t.trigger_comment_id] END,
            updated_at = now()
        WHERE t.id = (
          SELECT c.id FROM task c
          WHERE c.runtime_id = ANY(p_runtime_ids) AND c.agent_id = v_agent AND c.status = 'queued'
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
        RETURNING t.* INTO v_row;
        IF FOUND THEN
          v_count := v_count + 1;
          v_at := array_position(p_runtime_ids, v_row.runtime_id);
          RETURN QUERY SELECT f.*, false, false FROM claim_finish(
            v_row, false, p_runtime_workspace_ids[v_at], p_runtime_owner_ids[v_at], p_token_hashes[v_count], p_token_ttl, v_version) f;
          IF NOT v_more AND v_count < p_max AND v_in_flight + 1 < v_limit THEN
            v_more := EXISTS (
              SELECT 1 FROM task m WHERE m.runtime_id = ANY(p_runtime_ids) AND m.agent_id = v_agent AND m.status = 'queued');
          END IF;
        END IF;
      END LOOP;
    END IF;
  END IF;

  RETURN QUERY SELECT NULL::task, false, false, false, NULL::text, NULL::text, NULL::uuid, NULL::uuid, NULL::bigint, false, v_contended, v_more;
END
$$;
