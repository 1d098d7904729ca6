-- Up Migration
-- What today's daemon and its CLI need from the registry.

-- A user-set display name shared by the runtimes of one machine (NULL: none,
-- the daemon-proposed name is shown). A runtime registered for the first time
-- takes the one its machine's other runtimes agree on.
ALTER TABLE agent_runtime ADD COLUMN custom_name text NULL;
-- The machine's other runtimes, read when one of its runtimes is first registered.
CREATE INDEX agent_runtime_workspace_daemon_idx ON agent_runtime (workspace_id, daemon_id);

-- Users live in the product. It records here what GET /api/me shows of them;
-- a user it never recorded is answered from the credential alone.
CREATE TABLE user_profile (
  id uuid PRIMARY KEY,
  name text NOT NULL DEFAULT '',
  email text NOT NULL DEFAULT '',
  avatar_url text NULL,
  language text NULL,
  timezone text NULL,
  onboarded_at timestamptz NULL,
  onboarding_questionnaire jsonb NOT NULL DEFAULT '{}'::jsonb
    CHECK (jsonb_typeof(onboarding_questionnaire) = 'object'),
  starter_content_state text NULL,
  profile_description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
