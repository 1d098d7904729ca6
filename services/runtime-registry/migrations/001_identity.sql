-- Up Migration
-- Identity: workspaces, their members, and the credentials that reach the
-- control plane. Users live outside the control plane; a user id is the JWT
-- `sub` / PAT owner, a UUID.

CREATE TABLE workspace (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (name <> ''),
  slug text NOT NULL,
  description text NOT NULL DEFAULT '',
  -- Array of {url, description}; normalised on read, stored as given.
  repos jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(repos) = 'array'),
  settings jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
  -- The workspace system prompt handed to agents at claim.
  context text NULL,
  issue_prefix text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT workspace_slug_key UNIQUE (slug)
);

CREATE TABLE member (
  workspace_id uuid NOT NULL REFERENCES workspace (id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX member_user_idx ON member (user_id);

-- Secrets are never stored: only SHA-256 hex of the whole token.
CREATE TABLE daemon_token (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  token_hash text NOT NULL,
  token_prefix text NOT NULL,
  workspace_id uuid NOT NULL REFERENCES workspace (id) ON DELETE CASCADE,
  daemon_id text NOT NULL CHECK (daemon_id <> ''),
  -- NULL: never expires.
  expires_at timestamptz NULL,
  revoked_at timestamptz NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT daemon_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX daemon_token_workspace_daemon_idx ON daemon_token (workspace_id, daemon_id);

CREATE TABLE personal_access_token (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL,
  name text NOT NULL DEFAULT '',
  token_hash text NOT NULL,
  token_prefix text NOT NULL,
  expires_at timestamptz NULL,
  last_used_at timestamptz NULL,
  revoked_at timestamptz NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT personal_access_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX personal_access_token_user_idx ON personal_access_token (user_id);
