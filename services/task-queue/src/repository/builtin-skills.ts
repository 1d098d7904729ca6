import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

const storedSkill = z.object({
  name: z.string(),
  description: z.string(),
  content: z.string(),
  files: z.array(z.object({ path: z.string(), content: z.string() })),
});

export type StoredSkill = z.infer<typeof storedSkill>;

const setRow = z.object({
  /** bigint: read as a decimal string. */
  version: z.string(),
  skills: z.array(storedSkill),
  updated_at: z.date(),
});

/** The stored set; null when none was ever registered. */
export async function findSet(db: CommonQueryMethods) {
  const row = await db.maybeOne(sql.type(setRow)`
    SELECT version::text AS version, skills, updated_at FROM taskqueue.builtin_skill_set`);
  return row ? { version: Number(row.version), skills: row.skills, updatedAt: row.updated_at } : null;
}

/**
 * Stores the set when its version is higher than the stored one (or none is
 * stored), in one statement; returns the version stored afterwards and
 * whether this call wrote it.
 */
export async function replaceSet(db: CommonQueryMethods, version: number, skills: StoredSkill[]) {
  const row = await db.one(sql.type(z.object({ replaced: z.boolean(), stored_version: z.string() }))`
    WITH written AS (
      INSERT INTO taskqueue.builtin_skill_set AS b (singleton, version, skills, updated_at)
      VALUES (true, ${version}, ${sql.jsonb(skills as never)}, now())
      ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, skills = excluded.skills, updated_at = now()
      WHERE b.version < excluded.version
      RETURNING version)
    SELECT EXISTS (SELECT 1 FROM written) AS replaced,
           coalesce((SELECT version FROM written), (SELECT version FROM taskqueue.builtin_skill_set))::text AS stored_version`);
  return { replaced: row.replaced, storedVersion: Number(row.stored_version) };
}
