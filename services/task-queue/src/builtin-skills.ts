import { InvalidArgumentError } from "@controlplane/grpc";
import { LIMITS } from "@controlplane/config";
import type { CommonQueryMethods } from "@controlplane/db";
import type { AgentSkill } from "@controlplane/proto/registry/v1/registry";
import type { BuiltinSkill, GetBuiltinSkillsResponse, SetBuiltinSkillsResponse } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { TaskQueueDeps } from "./deps.js";
import * as repo from "./repository/builtin-skills.js";
import { requireLength, storableText } from "./text.js";

/** Skills in one set: the original ships a handful. */
export const BUILTIN_SKILLS_MAX = 100;
/** Files across the set. */
export const BUILTIN_SKILL_FILES_MAX = 256;
/**
 * Contents and file contents of the whole set, in UTF-16 code units: every
 * claim answer carries them besides the agent's own skills, and the answer
 * must stay well inside gRPC's 8 MiB message.
 */
export const BUILTIN_SKILLS_CONTENT_CHARS = 4 * 1024 * 1024;

/**
 * SetBuiltinSkills: the product registers its built-in skill set. Checked
 * whole before anything is stored; stored only when its version is higher
 * than the stored one.
 */
export async function setBuiltinSkills(deps: TaskQueueDeps, version: number, skills: BuiltinSkill[]): Promise<SetBuiltinSkillsResponse> {
  if (!Number.isSafeInteger(version) || version <= 0) throw new InvalidArgumentError("version must be a positive integer");
  const stored = storableSkills(skills);
  const { replaced, storedVersion } = await repo.replaceSet(deps.pool, version, stored);
  if (replaced) deps.log.info({ version, skills: stored.length }, "built-in skill set replaced");
  return { replaced, storedVersion };
}

export async function getBuiltinSkills(deps: TaskQueueDeps): Promise<GetBuiltinSkillsResponse> {
  const set = await repo.findSet(deps.pool);
  if (!set) return { version: 0, skills: [] };
  return { version: set.version, skills: set.skills, updatedAt: set.updatedAt };
}

function storableSkills(skills: BuiltinSkill[]): repo.StoredSkill[] {
  if (skills.length > BUILTIN_SKILLS_MAX) throw new InvalidArgumentError(`at most ${BUILTIN_SKILLS_MAX} built-in skills`);
  const names = new Set<string>();
  let files = 0;
  let chars = 0;
  const stored = skills.map((skill, i) => {
    const name = storableText(skill.name);
    if (!name) throw new InvalidArgumentError(`skills[${i}].name is required`);
    requireLength(`skills[${i}].name`, name, LIMITS.NAME_CHARS);
    if (names.has(name)) throw new InvalidArgumentError(`skills[${i}].name ${JSON.stringify(name)} appears twice`);
    names.add(name);
    requireLength(`skills[${i}].description`, skill.description, LIMITS.DESCRIPTION_CHARS);
    files += skill.files.length;
    chars += skill.content.length;
    for (const [j, file] of skill.files.entries()) {
      if (!file.path) throw new InvalidArgumentError(`skills[${i}].files[${j}].path is required`);
      requireLength(`skills[${i}].files[${j}].path`, file.path, LIMITS.PATH_CHARS);
      chars += file.content.length;
    }
    return {
      name,
      description: storableText(skill.description),
      content: storableText(skill.content),
      files: skill.files.map((file) => ({ path: storableText(file.path), content: storableText(file.content) })),
    };
  });
  if (files > BUILTIN_SKILL_FILES_MAX) throw new InvalidArgumentError(`at most ${BUILTIN_SKILL_FILES_MAX} files across the built-in skills`);
  if (chars > BUILTIN_SKILLS_CONTENT_CHARS) throw new InvalidArgumentError("built-in skills too large");
  return stored;
}

/**
 * This replica's copy of the built-in skill set, as the claim hands it out
 * (agent skills with id ""). The claim statement reports the current
 * version; a copy of another version is reloaded (once, however many claims
 * ask meanwhile), so a new set reaches every replica at its next claim
 * without a query per claim.
 */
export class BuiltinSkillsCache {
  private current: { version: number; skills: AgentSkill[] } = { version: 0, skills: [] };
  private loading: Promise<void> | undefined;

  constructor(private readonly db: CommonQueryMethods) {}

  /** The set of `version` (or newer); empty for version 0. Throws when the set cannot be read. */
  async forVersion(version: number): Promise<AgentSkill[]> {
    if (version === 0) return [];
    // Twice at most: a load already under way may have begun before this version was stored.
    for (let attempt = 0; attempt < 2 && this.current.version < version; attempt++) {
      this.loading ??= this.load().finally(() => (this.loading = undefined));
      await this.loading;
    }
    return this.current.skills;
  }

  private async load(): Promise<void> {
    const set = await repo.findSet(this.db);
    if (!set || set.version <= this.current.version) return;
    this.current = {
      version: set.version,
      skills: set.skills.map((s) => ({ id: "", name: s.name, description: s.description, content: s.content, files: s.files })),
    };
  }
}
