import type { Database } from '../db/database.js';

/**
 * Records a client assertion's jti; false if it was seen before. The primary key makes this hold
 * across every replica at once, with no read-then-write race.
 */
export async function consumeAssertionJti(db: Database, workloadId: string, jti: string, expiresAt: Date): Promise<boolean> {
  const row = await db
    .insertInto('assertion_jtis')
    .values({ workload_id: workloadId, jti, expires_at: expiresAt })
    .onConflict((oc) => oc.doNothing())
    .returning('jti')
    .executeTakeFirst();
  return row !== undefined;
}

/** Deletes replay-cache entries whose assertions can no longer be presented. */
export async function purgeExpiredAssertionJtis(db: Database, now: Date): Promise<number> {
  const r = await db.deleteFrom('assertion_jtis').where('expires_at', '<', now).executeTakeFirst();
  return Number(r.numDeletedRows);
}
