import type { Database } from '../db/database.js';
import { endActiveGrants } from './grant.repository.js';
import { recordGrantsEnded } from './grant-events.js';
import { END_BATCH_SIZE } from './end-grants.js';

/**
 * Ends every active grant of a workload (and their delegated children) as revoked, inside the caller's
 * transaction, with one event each: the kill switch behind suspending or retiring a workload, atomic
 * with the status change. Grants already ended are left alone, so running it twice revokes nothing more.
 */
export async function revokeActiveGrantsOfWorkload(trx: Database, workloadId: string, actor: string, reason: string, now: Date): Promise<string[]> {
  const end = { status: 'revoked' as const, by: actor, reason, at: now, decisionId: null };
  const ids: string[] = [];
  for (;;) {
    const rows = await endActiveGrants(trx, { workloadId }, end, { cascade: true, limit: END_BATCH_SIZE, skipLocked: false });
    await recordGrantsEnded(trx, rows, now);
    ids.push(...rows.map((r) => r.id));
    if (rows.length === 0) return ids;
  }
}
