import { sql } from 'kysely';
import type { Database } from '../db/database.js';

/**
 * Records a client assertion's jti; false if it was seen before. The primary key makes this hold
 * across every replica at once, with no read-then-write race.
 *
 * The insert commits asynchronously (synchronous_commit off for this one statement): its own WAL flush
 * was half the cost of an assertion mint. Uniqueness and visibility to other replicas are unchanged
 * (both hold at commit, before the flush). Durability is not lost where it matters: the grant this
 * assertion leads to commits synchronously afterwards, and flushing its commit record flushes this
 * earlier one too. Only an assertion that got no grant can be forgotten, by a Postgres crash within
 * a fraction of a second, and then be presented once more inside its own short lifetime.
 */
export async function consumeAssertionJti(db: Database, workloadId: string, jti: string, expiresAt: Date): Promise<boolean> {
  const row = await sql<{ jti: string }>`
    insert into assertion_jtis (workload_id, jti, expires_at)
    select ${workloadId}, ${jti}, ${expiresAt}
    from (select set_config('synchronous_commit', 'off', true)) as async_commit
    on conflict do nothing
    returning jti`.execute(db);
  return row.rows.length === 1;
}

/** Deletes replay-cache entries whose assertions can no longer be presented. */
export async function purgeExpiredAssertionJtis(db: Database, now: Date): Promise<number> {
  const r = await db.deleteFrom('assertion_jtis').where('expires_at', '<', now).executeTakeFirst();
  return Number(r.numDeletedRows);
}
