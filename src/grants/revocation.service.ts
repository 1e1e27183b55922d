import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { Registry } from '../config/registry.js';
import { bumpRegistryEpoch } from '../config/registry.repository.js';
import { notFound } from '../lib/errors.js';
import { findGrant, type GrantRow, type GrantSelector } from './grant.repository.js';
import { endGrants } from './end-grants.js';

/** Who revokes and why; `actor` is `admin:<name>`, `workload:<id>` or `policy:<...>`. */
export interface Revocation {
  actor: string;
  reason: string;
  decisionId?: string | null;
}

/**
 * Revokes the grants a selector picks and, always, their delegated descendants. Idempotent: grants
 * already ended are left as they are, and only the grants this call changed are returned (and evented).
 */
export async function revokeGrants(db: Database, selector: GrantSelector, r: Revocation, now: Date): Promise<GrantRow[]> {
  return endGrants(db, selector, { status: 'revoked', by: r.actor, reason: r.reason, at: now, decisionId: r.decisionId ?? null }, { cascade: true });
}

/** Revokes one grant (and its children); returns the grant as it now is and what this call revoked. */
export async function revokeGrant(db: Database, grantId: string, r: Revocation, now: Date): Promise<{ grant: GrantRow; revoked: GrantRow[] }> {
  if (!(await findGrant(db, grantId))) throw notFound('Grant');
  const revoked = await revokeGrants(db, { grantIds: [grantId] }, r, now);
  return { grant: (await findGrant(db, grantId))!, revoked };
}

/**
 * Suspends a workload: new grants are refused from the moment this commits (the mint insert takes a
 * share lock on the workload row), then every active grant it holds is revoked. Running it again
 * revokes nothing more.
 */
export async function suspendWorkload(
  deps: { db: Database; registry: Registry },
  workloadId: string,
  r: Revocation,
  now: Date,
): Promise<{ changed: boolean; revoked: GrantRow[] }> {
  const changed = await deps.db.transaction().execute(async (trx) => {
    const w = await sql<{ status: string }>`select status from workloads where id = ${workloadId} for update`.execute(trx);
    if (!w.rows[0]) throw notFound('Workload');
    if (w.rows[0].status === 'suspended') return false;
    await trx
      .updateTable('workloads')
      .set({ status: 'suspended', status_reason: r.reason, status_changed_by: r.actor, status_changed_at: now })
      .where('id', '=', workloadId)
      .execute();
    await bumpRegistryEpoch(trx);
    return true;
  });
  // After the commit: a grant minted before it is visible to this revocation, none can be minted after.
  const revoked = await revokeGrants(deps.db, { workloadId }, { ...r, reason: `workload suspended: ${r.reason}` }, now);
  await deps.registry.refreshIfChanged();
  return { changed, revoked };
}
