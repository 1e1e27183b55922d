import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { KeyStore } from '../keys/keystore.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../db/database.js';
import { sha256Hex } from '../lib/hash.js';
import { findGrant, type GrantRow } from './grant.repository.js';
import { authenticationFailed } from '../lib/errors.js';

/** Verifies an access token this broker issued (signature, typ, issuer, expiry) against its own keys. */
export async function verifyOwnAccessToken(deps: { keys: KeyStore; clock: Clock; issuer: string }, token: string): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(token, createLocalJWKSet(deps.keys.jwks() as JSONWebKeySet), {
      issuer: deps.issuer,
      typ: 'at+jwt',
      algorithms: ['ES256'],
      currentDate: deps.clock.now(),
      requiredClaims: ['jti', 'sub', 'exp'],
    });
    return payload;
  } catch (err) {
    throw authenticationFailed(`own access token: ${(err as Error).message}`, err);
  }
}

/**
 * The grant a verified access token stands for, if it is usable now: its row exists, was minted with
 * exactly this token (so a token for a reused id cannot pass), is active and not past its expiry.
 */
export async function liveGrantOf(deps: { db: Database }, claims: JWTPayload, token: string, now: Date): Promise<GrantRow | undefined> {
  const grant = await findGrant(deps.db, String(claims.jti));
  if (!grant || grant.token_sha256 !== sha256Hex(token) || grant.status !== 'active' || grant.expires_at <= now) return undefined;
  return grant;
}
