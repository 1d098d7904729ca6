import type { Action } from "@controlplane/proto/liveness/v1/liveness";
import { rfc3339Nano } from "./wire/go-json.js";

/**
 * The answers of a runtime's user-requested actions (routes/runtime-actions):
 * the original's Go structs, fields in declaration order, `omitempty` ones
 * left out when empty; times are Go time values (RFC 3339 with the fraction).
 */

type Json = Record<string, unknown>;

function object(raw: string | undefined): Json {
  if (!raw) return {};
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : {};
  } catch {
    return {};
  }
}

const string = (value: unknown): string => (typeof value === "string" ? value : "");
const objects = (value: unknown): Json[] =>
  Array.isArray(value) ? value.map((v) => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : {})) : [];
/** `"key":value` only when the value is not Go's empty value for it. */
const omitEmpty = (key: string, value: string | boolean | number | unknown[] | Json | undefined): Json =>
  value === undefined || value === "" || value === false || value === 0 || (Array.isArray(value) && value.length === 0) ? {} : { [key]: value };

function times(action: Action) {
  return { created_at: rfc3339Nano(action.createdAt), updated_at: rfc3339Nano(action.updatedAt) };
}

/** UpdateRequest: {id, runtime_id, status, target_version, output?, error?, created_at, updated_at}. */
export function updateJson(action: Action) {
  const request = object(action.requestJson);
  const result = object(action.resultJson);
  return {
    id: action.id,
    runtime_id: action.runtimeId,
    status: action.status,
    target_version: string(request.target_version),
    ...omitEmpty("output", string(result.output)),
    ...omitEmpty("error", action.error),
    ...times(action),
  };
}

/** ModelListRequest: {id, runtime_id, status, models?, supported, error?, created_at, updated_at}. */
export function modelListJson(action: Action) {
  const result = object(action.resultJson);
  return {
    id: action.id,
    runtime_id: action.runtimeId,
    status: action.status,
    ...omitEmpty("models", objects(result.models).map(modelEntryJson)),
    supported: typeof result.supported === "boolean" ? result.supported : true,
    ...omitEmpty("error", action.error),
    ...times(action),
  };
}

/** ModelEntry: {id, label, provider?, default?, thinking?: {supported_levels, default_level?}}. */
function modelEntryJson(model: Json) {
  const thinking = typeof model.thinking === "object" && model.thinking !== null && !Array.isArray(model.thinking) ? (model.thinking as Json) : undefined;
  return {
    id: string(model.id),
    label: string(model.label),
    ...omitEmpty("provider", string(model.provider)),
    ...omitEmpty("default", model.default === true),
    ...(thinking
      ? {
          thinking: {
            // A nil slice in Go: null, not [].
            supported_levels: Array.isArray(thinking.supported_levels)
              ? objects(thinking.supported_levels).map((level) => ({
                  value: string(level.value),
                  label: string(level.label),
                  ...omitEmpty("description", string(level.description)),
                }))
              : null,
            ...omitEmpty("default_level", string(thinking.default_level)),
          },
        }
      : {}),
  };
}

/** RuntimeLocalSkillListRequest: {id, runtime_id, status, skills?, supported, error?, created_at, updated_at}. */
export function localSkillListJson(action: Action) {
  const result = object(action.resultJson);
  return {
    id: action.id,
    runtime_id: action.runtimeId,
    status: action.status,
    ...omitEmpty(
      "skills",
      objects(result.skills).map((skill) => ({
        key: string(skill.key),
        name: string(skill.name),
        ...omitEmpty("description", string(skill.description)),
        source_path: string(skill.source_path),
        provider: string(skill.provider),
        file_count: Number.isSafeInteger(skill.file_count) ? skill.file_count : 0,
      })),
    ),
    supported: typeof result.supported === "boolean" ? result.supported : true,
    ...omitEmpty("error", action.error),
    ...times(action),
  };
}

/**
 * RuntimeLocalSkillImportRequest: {id, runtime_id, skill_key, name?,
 * description?, action?, target_skill_id?, supports_conflict?, status,
 * skill?, conflict?, error?, created_at, updated_at}. `skill` is the bundle
 * the daemon returned (turning it into a workspace skill is the product's).
 */
export function localSkillImportJson(action: Action) {
  const request = object(action.requestJson);
  const result = object(action.resultJson);
  const skill = typeof result.skill === "object" && result.skill !== null && !Array.isArray(result.skill) ? (result.skill as Json) : undefined;
  const conflict = typeof result.conflict === "object" && result.conflict !== null ? (result.conflict as Json) : undefined;
  return {
    id: action.id,
    runtime_id: action.runtimeId,
    skill_key: string(request.skill_key),
    // Pointers in Go: present whenever set, even if empty.
    ...(typeof request.name === "string" ? { name: request.name } : {}),
    ...(typeof request.description === "string" ? { description: request.description } : {}),
    ...omitEmpty("action", string(request.action)),
    ...omitEmpty("target_skill_id", string(request.target_skill_id)),
    ...omitEmpty("supports_conflict", request.supports_conflict === true),
    status: action.status,
    ...(skill
      ? {
          skill: {
            name: string(skill.name),
            description: string(skill.description),
            content: string(skill.content),
            source_path: string(skill.source_path),
            provider: string(skill.provider),
            ...omitEmpty(
              "files",
              objects(skill.files).map((file) => ({ path: string(file.path), content: string(file.content) })),
            ),
          },
        }
      : {}),
    ...(conflict
      ? {
          conflict: {
            existing_skill_id: string(conflict.existing_skill_id),
            ...omitEmpty("existing_created_by", string(conflict.existing_created_by)),
            can_overwrite: conflict.can_overwrite === true,
          },
        }
      : {}),
    ...omitEmpty("error", action.error),
    ...times(action),
  };
}
