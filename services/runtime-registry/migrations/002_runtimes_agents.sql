-- Up Migration
-- Runtimes daemons register, and the agents bound to them.

CREATE TABLE agent_runtime (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id uuid NOT NULL REFERENCES workspace (id) ON DELETE CASCADE,
  -- NULL for rows not registered by a daemon; NULLs never collide below.
  daemon_id text NULL,
  -- The first legacy (hostname-derived) daemon id merged into this row.
  legacy_daemon_id text NULL,
  name text NOT NULL,
  runtime_mode text NOT NULL DEFAULT 'local' CHECK (runtime_mode IN ('local', 'cloud')),
  -- Free text for built-in runtimes; the profile's protocol family for custom ones.
  provider text NOT NULL,
  status text NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'offline')),
  -- When status last changed: liveness events older than this are ignored.
  status_changed_at timestamptz NOT NULL DEFAULT now(),
  device_info text NOT NULL DEFAULT '',
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  owner_id uuid NULL,
  visibility text NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'public')),
  -- A custom runtime's profile (owned by the profile catalog: no foreign key).
  profile_id uuid NULL,
  -- Deliberately not indexed: updates that only touch it stay HOT.
  last_seen_at timestamptz NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Built-in runtimes: one per (workspace, daemon, provider); custom ones: one
-- per (workspace, daemon, profile). Both partial, so a built-in codex and
-- custom codex-family profiles coexist on one daemon.
CREATE UNIQUE INDEX agent_runtime_workspace_daemon_provider_key
  ON agent_runtime (workspace_id, daemon_id, provider) WHERE profile_id IS NULL;
CREATE UNIQUE INDEX agent_runtime_workspace_daemon_profile_key
  ON agent_runtime (workspace_id, daemon_id, profile_id) WHERE profile_id IS NOT NULL;
CREATE INDEX agent_runtime_workspace_status_idx ON agent_runtime (workspace_id, status);
CREATE INDEX agent_runtime_profile_idx ON agent_runtime (workspace_id, profile_id) WHERE profile_id IS NOT NULL;
-- The legacy merge looks daemon ids up case-insensitively.
CREATE INDEX agent_runtime_legacy_lookup_idx
  ON agent_runtime (workspace_id, provider, lower(daemon_id)) WHERE profile_id IS NULL;

CREATE TABLE agent (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id uuid NOT NULL REFERENCES workspace (id) ON DELETE CASCADE,
  -- RESTRICT: a runtime with agents cannot disappear under them.
  runtime_id uuid NOT NULL REFERENCES agent_runtime (id) ON DELETE RESTRICT,
  name text NOT NULL CHECK (name <> ''),
  instructions text NOT NULL DEFAULT '',
  custom_env jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(custom_env) = 'object'),
  custom_args jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(custom_args) = 'array'),
  mcp_config jsonb NULL,
  model text NULL,
  thinking_level text NULL,
  runtime_config jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- Skills as handed to the daemon: [{id, name, description, content, files: [{path, content}]}].
  skills jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(skills) = 'array'),
  max_concurrent_tasks integer NOT NULL DEFAULT 6 CHECK (max_concurrent_tasks > 0),
  visibility text NOT NULL DEFAULT 'private' CHECK (visibility IN ('workspace', 'private')),
  owner_id uuid NULL,
  archived_at timestamptz NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_runtime_id_idx ON agent (runtime_id);
CREATE INDEX agent_workspace_idx ON agent (workspace_id, created_at);
