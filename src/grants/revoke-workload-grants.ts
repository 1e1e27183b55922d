import type { Database } from '../db/database.js';

/**
 * Ends every active grant of a workload as revoked, inside the caller's transaction (the kill switch
 * behind suspending or retiring a workload). Returns the ids it revoked; grants already ended are left
 * as they are, so running it twice revokes nothing more.
 */
export async function revokeActiveGrantsOfWorkload(trx: Database, workloadId: string, actor: string, reason: string, now: Date): Promise<string[]> {
  const rows = await trx
    .updateTable('grants')
    .set({ status: 'revoked', ended_at: now, ended_by: actor, end_reason: reason })
    .where('workload_id', '=', workloadId)
    .where('status', '=', 'active')
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}
