import { sql } from 'kysely';
import type { JWTPayload } from 'jose';
import type { Database } from '../db/database.js';
import type { KeyStore } from '../keys/keystore.js';
import type { Clock } from '../lib/clock.js';
import { sha256Hex } from '../lib/hash.js';
import { findGrant, type GrantRow } from './grant.repository.js';
import { recordGrantsEnded } from './grant-events.js';
import { verifyOwnAccessToken } from './own-token.js';
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
export async function introspect(deps: IntrospectionDeps, token: string, rs: ResourceServer): Promise<Introspection> {
  let claims: JWTPayload;
  try {
    claims = await verifyOwnAccessToken(deps, token);
  } catch {
    return INACTIVE;
  }
  const audiences = [claims.aud ?? []].flat();
  if (rs.audiences.length > 0 && !audiences.some((a) => rs.audiences.includes(a))) return INACTIVE;
  const now = deps.clock.now();
  const grant = await findGrant(deps.db, String(claims.jti));
  if (!grant || grant.token_sha256 !== sha256Hex(token) || grant.status !== 'active' || grant.expires_at <= now) return INACTIVE;
  if (grant.max_uses === null) return { active: true, token_type: 'Bearer', ...claims };
  const used = await consumeUse(deps.db, grant.id, now);
  if (!used) return INACTIVE;
  return { active: true, token_type: 'Bearer', ...claims, uses_remaining: Math.max(0, (used.max_uses ?? 0) - used.use_count) };
}

/** Counts one use if any is left; the last one ends the grant as completed, with its event. */
async function consumeUse(db: Database, grantId: string, now: Date): Promise<GrantRow | undefined> {
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<GrantRow>`
      update grants set use_count = use_count + 1,
        status = case when use_count + 1 >= max_uses then 'completed' else status end,
        ended_at = case when use_count + 1 >= max_uses then ${now} else ended_at end,
        ended_by = case when use_count + 1 >= max_uses then 'system:uses' else ended_by end,
        end_reason = case when use_count + 1 >= max_uses then 'uses exhausted' else end_reason end
      where id = ${grantId} and status = 'active' and expires_at > ${now} and use_count < max_uses
      returning *`.execute(trx);
    const row = rows[0];
    if (row?.status === 'completed') await recordGrantsEnded(trx, [row], now);
    return row;
  });
}
