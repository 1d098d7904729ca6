import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

const userRow = z.object({
  id: z.string(),
  name: z.string(),
  email: z.string(),
  avatar_url: z.string().nullable(),
  language: z.string().nullable(),
  timezone: z.string().nullable(),
  onboarded_at: z.date().nullable(),
  onboarding_questionnaire_json: z.string(),
  starter_content_state: z.string().nullable(),
  profile_description: z.string(),
  created_at: z.date(),
  updated_at: z.date(),
});

export type UserRow = z.infer<typeof userRow>;

const columns = sql.fragment`
  id, name, email, avatar_url, language, timezone, onboarded_at,
  onboarding_questionnaire::text AS onboarding_questionnaire_json, starter_content_state, profile_description,
  created_at, updated_at`;

export interface UserRecord {
  id: string;
  name: string;
  email: string;
  avatarUrl: string | null;
  language: string | null;
  timezone: string | null;
  onboardedAt: Date | null;
  /** A JSON object, as text. */
  questionnaireJson: string;
  starterContentState: string | null;
  profileDescription: string;
  createdAt: Date | null;
  updatedAt: Date | null;
}

const stamp = (date: Date | null) => (date === null ? sql.fragment`now()` : sql.fragment`${sql.timestamp(date)}`);

/** Inserts the user or replaces every field of the stored one. */
export function upsertUser(db: CommonQueryMethods, u: UserRecord) {
  return db.one(sql.type(userRow)`
    INSERT INTO registry.user_profile
      (id, name, email, avatar_url, language, timezone, onboarded_at, onboarding_questionnaire,
       starter_content_state, profile_description, created_at, updated_at)
    VALUES (${u.id}, ${u.name}, ${u.email}, ${u.avatarUrl}, ${u.language}, ${u.timezone},
            ${u.onboardedAt === null ? null : sql.timestamp(u.onboardedAt)}, ${u.questionnaireJson}::jsonb,
            ${u.starterContentState}, ${u.profileDescription}, ${stamp(u.createdAt)}, ${stamp(u.updatedAt)})
    ON CONFLICT (id) DO UPDATE SET
      name = excluded.name,
      email = excluded.email,
      avatar_url = excluded.avatar_url,
      language = excluded.language,
      timezone = excluded.timezone,
      onboarded_at = excluded.onboarded_at,
      onboarding_questionnaire = excluded.onboarding_questionnaire,
      starter_content_state = excluded.starter_content_state,
      profile_description = excluded.profile_description,
      created_at = ${u.createdAt === null ? sql.fragment`user_profile.created_at` : sql.fragment`excluded.created_at`},
      updated_at = excluded.updated_at
    RETURNING ${columns}`);
}

export function findUser(db: CommonQueryMethods, id: string) {
  return db.maybeOne(sql.type(userRow)`SELECT ${columns} FROM registry.user_profile WHERE id = ${id}`);
}
