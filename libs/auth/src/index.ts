import { createHash, randomBytes } from "node:crypto";

/** Token prefixes; the prefix tells the kind before any lookup. */
export const TOKEN_PREFIX = {
  /** Daemon token: one workspace, one daemon id. */
  daemon: "mdt_",
  /** Personal access token of a user. */
  personalAccess: "mul_",
  /** Task token handed to an agent process at claim. */
  task: "mat_",
} as const;

export type TokenPrefix = (typeof TOKEN_PREFIX)[keyof typeof TOKEN_PREFIX];

/** 20 random bytes as 40 lower-case hex characters after the prefix. */
export function generateToken(prefix: TokenPrefix): string {
  return prefix + randomBytes(20).toString("hex");
}

/** The only form a token is stored in: SHA-256 of the whole string, lower-case hex. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}
