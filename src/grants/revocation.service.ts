import type { Database } from '../db/database.js';
import { notFound } from '../lib/errors.js';
import { findGrant, type GrantRow, type GrantSelector } from './grant.repository.js';
import { endGrants } from './end-grants.js';

/** Who revokes and why; `actor` is `admin:<name>`, `workload:<id>` or `policy:<...>`. */
export interface Revocation {
  actor: string;
  reason: string;
  decisionId?: string | null;
  requestId?: string | null;
}

/**
 * Revokes the grants a selector picks and, always, their delegated descendants. Idempotent: grants
 * already ended are left as they are, and only the grants this call changed are returned (and evented).
 */
export async function revokeGrants(db: Database, selector: GrantSelector, r: Revocation, now: Date): Promise<GrantRow[]> {
  return endGrants(db, selector, { status: 'revoked', by: r.actor, reason: r.reason, at: now, decisionId: r.decisionId ?? null, requestId: r.requestId ?? null }, { cascade: true });
}

/** Revokes one grant (and its children); returns the grant as it now is and what this call revoked. */
export async function revokeGrant(db: Database, grantId: string, r: Revocation, now: Date): Promise<{ grant: GrantRow; revoked: GrantRow[] }> {
  if (!(await findGrant(db, grantId))) throw notFound('Grant');
  const revoked = await revokeGrants(db, { grantIds: [grantId] }, r, now);
  return { grant: (await findGrant(db, grantId))!, revoked };
}

