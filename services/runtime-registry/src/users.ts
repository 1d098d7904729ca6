import { InvalidArgumentError, NotFoundError } from "@controlplane/grpc";
import type { DatabasePool } from "@controlplane/db";
import { LIMITS } from "@controlplane/config";
import { parseUuid } from "@controlplane/ids";
import type { User } from "@controlplane/proto/registry/v1/identity";
import * as repo from "./repository/users.js";

export const USER_NOT_FOUND = "user not found";

/**
 * Users live in the product. What it records here is what GET /api/me shows;
 * a user it never recorded is shown as far as the credential tells: the user
 * id, and the email claim of a JWT. Recording replaces every field.
 */
export async function recordUser(pool: DatabasePool, user: User | undefined): Promise<User> {
  if (!user) throw new InvalidArgumentError("user is required");
  const id = parseUuid(user.id);
  if (!id) throw new InvalidArgumentError("invalid user id");
  const short: Array<[string, string | undefined]> = [
    ["name", user.name],
    ["email", user.email],
    ["language", user.language],
    ["timezone", user.timezone],
    ["starter_content_state", user.starterContentState],
  ];
  for (const [field, value] of short) checkText(field, value, LIMITS.NAME_CHARS);
  checkText("avatar_url", user.avatarUrl, LIMITS.PATH_CHARS);
  checkText("profile_description", user.profileDescription, LIMITS.DESCRIPTION_CHARS);
  const row = await repo.upsertUser(pool, {
    id,
    name: user.name,
    email: user.email,
    avatarUrl: user.avatarUrl ?? null,
    language: user.language ?? null,
    timezone: user.timezone ?? null,
    onboardedAt: user.onboardedAt ?? null,
    questionnaireJson: questionnaire(user.onboardingQuestionnaireJson),
    starterContentState: user.starterContentState ?? null,
    profileDescription: user.profileDescription,
    createdAt: user.createdAt ?? null,
    updatedAt: user.updatedAt ?? null,
  });
  return toProto(row);
}

/** The recorded user, or one made of the credential's id and email claim. */
export async function getUser(pool: DatabasePool, userId: string, emailClaim: string | undefined): Promise<User> {
  const id = parseUuid(userId);
  if (!id) throw new NotFoundError(USER_NOT_FOUND);
  const row = await repo.findUser(pool, id);
  if (row) return toProto(row);
  return {
    id,
    name: "",
    email: emailClaim ?? "",
    onboardingQuestionnaireJson: "{}",
    profileDescription: "",
    recorded: false,
  };
}

function checkText(field: string, value: string | undefined, max: number): void {
  if (value === undefined) return;
  if (value.length > max) throw new InvalidArgumentError(`${field}: too long (at most ${max} characters)`);
  if (value.includes("\u0000")) throw new InvalidArgumentError(`${field}: contains a NUL character`);
}

/** The questionnaire as stored: a JSON object, "{}" when empty. */
function questionnaire(json: string): string {
  if (json.trim() === "") return "{}";
  if (json.length > LIMITS.JSON_OBJECT_CHARS) {
    throw new InvalidArgumentError(`onboarding_questionnaire: too large (at most ${LIMITS.JSON_OBJECT_CHARS} characters as JSON)`);
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new InvalidArgumentError("onboarding_questionnaire must be a JSON object");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || JSON.stringify(value).includes("\\u0000")) {
    throw new InvalidArgumentError("onboarding_questionnaire must be a JSON object");
  }
  return json;
}

function toProto(row: repo.UserRow): User {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    avatarUrl: row.avatar_url ?? undefined,
    language: row.language ?? undefined,
    timezone: row.timezone ?? undefined,
    onboardedAt: row.onboarded_at ?? undefined,
    onboardingQuestionnaireJson: row.onboarding_questionnaire_json,
    starterContentState: row.starter_content_state ?? undefined,
    profileDescription: row.profile_description,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    recorded: true,
  };
}
