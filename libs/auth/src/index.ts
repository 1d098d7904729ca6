import { createHash, randomFillSync } from "node:crypto";

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

/** Random bytes in a token. */
const TOKEN_RANDOM_BYTES = 20;

/**
 * Random bytes are drawn from the system's CSPRNG 4 KiB at a time (as Node
 * does for randomUUID) and handed out in order, each byte once: every claim
 * makes a token, and a call into the CSPRNG per token was about 1% of a
 * claim's CPU.
 */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/** `bytes` random bytes as lower-case hex. */
export function randomHex(bytes: number): string {
  if (bytes > POOL_BYTES) return randomFillSync(Buffer.allocUnsafe(bytes)).toString("hex");
  if (poolOffset + bytes > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    poolOffset = 0;
  }
  const hex = pool.toString("hex", poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return hex;
}

/** 20 random bytes as 40 lower-case hex characters after the prefix. */
export function generateToken(prefix: TokenPrefix): string {
  return prefix + randomHex(TOKEN_RANDOM_BYTES);
}

/** The only form a token is stored in: SHA-256 of the whole string, lower-case hex. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}
