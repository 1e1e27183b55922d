import type { Database } from '../db/database.js';
import { endGrantsInTransaction } from './end-grants.js';

/**
 * Ends every active grant of a workload (and their delegated children) as revoked, inside the caller's
 * transaction, with one event each: the kill switch behind suspending or retiring a workload, atomic
 * with the status change. Grants already ended are left alone, so running it twice revokes nothing more.
 */
export async function revokeActiveGrantsOfWorkload(trx: Database, workloadId: string, actor: string, reason: string, now: Date): Promise<string[]> {
  const end = { status: 'revoked' as const, by: actor, reason, at: now, decisionId: null };
  return (await endGrantsInTransaction(trx, { workloadId }, end, { cascade: true })).map((r) => r.id);
}
