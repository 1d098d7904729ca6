-- Up Migration
-- Custom runtime profiles. No foreign keys by design: the workspace lives in
-- the registry's schema, and the registry cleans runtime rows on delete.
-- protocol_family has no CHECK here: the whitelist's single source of truth is
-- src/protocol-families.ts, which validates every write.
CREATE TABLE runtime_profile (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id uuid NOT NULL,
  display_name text NOT NULL,
  protocol_family text NOT NULL,
  command_name text NOT NULL,
  description text NULL,
  fixed_args jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(fixed_args) = 'array'),
  visibility text NOT NULL DEFAULT 'workspace' CHECK (visibility IN ('workspace', 'private')),
  created_by uuid NULL,
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT runtime_profile_workspace_display_name_key UNIQUE (workspace_id, display_name)
);
CREATE INDEX runtime_profile_workspace_idx ON runtime_profile (workspace_id, created_at);
