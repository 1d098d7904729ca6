-- Up Migration
-- What today's daemon reports beyond the seed's: on complete, fail and
-- cancel-ack the git branch its run delivered on and the directory that
-- outlives its disposable worktree (an empty report never clears them); on
-- complete and fail whether the session's rollout went missing (then the
-- session is not kept) and a session it retired (never offered for resume
-- again); on usage the cost, in ticks of 1e-10 USD (NULL: unknown).

ALTER TABLE task
  ADD COLUMN branch_name text NULL,
  ADD COLUMN durable_work_dir text NULL,
  ADD COLUMN session_rollout_missing boolean NOT NULL DEFAULT false,
  ADD COLUMN retired_session_id text NULL;

ALTER TABLE task_usage ADD COLUMN cost_usd_ticks bigint NULL CHECK (cost_usd_ticks > 0);

