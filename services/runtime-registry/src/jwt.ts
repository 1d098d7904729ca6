import { errors, jwtVerify } from "jose";
import { UnauthenticatedError } from "@controlplane/grpc";

export interface JwtClaims {
  userId: string;
  email?: string;
  expiresAt?: Date;
}

/** HMAC algorithms only: a token signed any other way is not ours. */
const ALGORITHMS = ["HS256", "HS384", "HS512"];

/**
 * Verifies a user session JWT. Signature, exp and nbf failures answer
 * "invalid token"; a token without a non-blank string `sub` answers
 * "invalid claims".
 */
export async function verifyJwt(token: string, secret: Uint8Array): Promise<JwtClaims> {
  const { payload } = await jwtVerify(token, secret, { algorithms: ALGORITHMS }).catch((error: unknown) => {
    if (error instanceof errors.JOSEError || error instanceof TypeError) throw new UnauthenticatedError("invalid token");
    throw error;
  });
  if (typeof payload.sub !== "string" || payload.sub.trim() === "") throw new UnauthenticatedError("invalid claims");
  return {
    userId: payload.sub,
    email: typeof payload.email === "string" ? payload.email : undefined,
    expiresAt: typeof payload.exp === "number" ? new Date(payload.exp * 1000) : undefined,
  };
}
