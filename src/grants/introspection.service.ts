import type { JWTPayload } from 'jose';
import type { Database } from '../db/database.js';
import type { KeyStore } from '../keys/keystore.js';
import type { Clock } from '../lib/clock.js';
import { recordGrantUse } from './grant-use.js';
import { liveGrantOf, verifyOwnAccessToken } from './own-token.js';
import type { ResourceServer } from './resource-servers.js';

interface IntrospectionDeps {
  db: Database;
  keys: KeyStore;
  clock: Clock;
  issuer: string;
}

/** An RFC 7662 answer: `{ active: false }` says nothing more, whatever the reason. */
export type Introspection = { active: false } | ({ active: true; token_type: 'Bearer'; uses_remaining?: number } & JWTPayload);

const INACTIVE = { active: false } as const;

/**
 * Whether a token is usable now: its signature and `exp` (against the keys in JWKS, so a revoked key's
 * tokens are inactive), and its grant's current state. For a grant with a use limit, an active answer
 * is one use: the last use completes the grant ("uses exhausted"), and a later call is inactive.
 */
export async function introspect(deps: IntrospectionDeps, token: string, rs: ResourceServer, requestId?: string): Promise<Introspection> {
  let claims: JWTPayload;
  try {
    claims = await verifyOwnAccessToken(deps, token);
  } catch {
    return INACTIVE;
  }
  const audiences = [claims.aud ?? []].flat();
  if (rs.audiences.length > 0 && !audiences.some((a) => rs.audiences.includes(a))) return INACTIVE;
  const now = deps.clock.now();
  const grant = await liveGrantOf(deps, claims, token, now);
  if (!grant) return INACTIVE;
  // Every introspection is a use of the token, counted and audited; with a use limit, it spends one.
  const used = await recordGrantUse(deps.db, grant.id, { by: `rs:${rs.name}`, via: 'introspection', requestId }, now);
  if (!used) return INACTIVE;
  if (used.max_uses === null) return { active: true, token_type: 'Bearer', ...claims };
  return { active: true, token_type: 'Bearer', ...claims, uses_remaining: Math.max(0, used.max_uses - used.use_count) };
}
