import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import { AUDIT_PURGED_ACTION, type AuditChainHead } from './audit-event.js';
import { appendAuditEvent, inTransaction, lockAuditChain, readAuditAnchor, readAuditHead } from './audit.repository.js';

// Rows deleted per call: the chain lock is held while deleting, so every append in every process
// waits meanwhile; a bounded batch keeps that wait far below the 5 s statement timeout. Loop on `more`.
export const PURGE_BATCH_ROWS = 10_000;

export interface AuditPurgeResult {
  /** How many events were deleted by this call. */
  purged: number;
  /** The new anchor (last purged seq and hash), or null when nothing was purged. */
  through: AuditChainHead | null;
  /** True when older events remain: call again. */
  more: boolean;
  /** The `audit.purged` event that records this call. */
  event: AuditChainHead;
}

/**
 * Retention: appends an `audit.purged` event naming the oldest events before `before` (at most
 * PURGE_BATCH_ROWS) and the last one's hash, then has the owner's SECURITY DEFINER function
 * `tessera_audit_purge` delete that range and move the anchor to it. What remains still verifies from
 * the anchor, the purge itself is on the chain, and the broker's role can delete nothing any other way.
 */
export async function purgeAuditEventsBefore(
  db: Database,
  before: Date,
  actor: string,
  now: Date,
  requestId: string | null = null,
): Promise<AuditPurgeResult> {
  return inTransaction(db, async (trx) => {
    // The same lock as appenders: no event can land between reading the range and moving the anchor.
    await lockAuditChain(trx);
    const anchor = await readAuditAnchor(trx);
    const windowEnd = BigInt(anchor.seq) + BigInt(PURGE_BATCH_ROWS);
    // Only a prefix is purged: `at` comes from each caller's clock, so it is not strictly ordered by
    // seq, and deleting every row with at < before could punch holes that verify would call gaps.
    // The search stays inside the window (plus one row, to know whether another call would purge
    // more), so its cost is bounded however many old events there are.
    const firstKept = await trx
      .selectFrom('audit_events')
      .select('seq')
      .where('seq', '>', anchor.seq)
      .where('seq', '<=', (windowEnd + 1n).toString())
      .where('at', '>=', before)
      .orderBy('seq')
      .limit(1)
      .executeTakeFirst();
    const limit = firstKept && BigInt(firstKept.seq) <= windowEnd ? BigInt(firstKept.seq) - 1n : windowEnd;
    const through =
      (await trx
        .selectFrom('audit_events')
        .select(['seq', 'hash'])
        .where('seq', '<=', limit.toString())
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst()) ?? null;
    const more = !firstKept && BigInt((await readAuditHead(trx)).seq) > windowEnd;

    // The event first: the owner's purge function deletes only the range that the newest event, an
    // audit.purged, names. seq is gapless from the anchor, so the count is known before deleting.
    const purged = through ? Number(BigInt(through.seq) - BigInt(anchor.seq)) : 0;
    const event = await appendAuditEvent(
      trx,
      {
        actor,
        action: AUDIT_PURGED_ACTION,
        outcome: 'success',
        target_type: 'audit_log',
        request_id: requestId,
        data: {
          before: before.toISOString(),
          count: purged,
          from_seq: through ? (BigInt(anchor.seq) + 1n).toString() : null,
          through_seq: through?.seq ?? null,
          through_hash: through?.hash ?? null,
        },
      },
      now,
    );
    if (through) {
      const { rows } = await sql<{ n: string }>`select tessera_audit_purge(${event.seq}::bigint) as n`.execute(trx);
      if (Number(rows[0]!.n) !== purged) throw new Error(`audit purge deleted ${rows[0]!.n} events where the chain says ${purged}`);
    }
    return { purged, through, more, event };
  });
}

/** What a whole retention run did: every batch's count, the last anchor, and the events recording it. */
export interface AuditPurgeRun {
  purged: number;
  through: AuditChainHead | null;
  events: AuditChainHead[];
}

/**
 * Retention to the end: purges batch after batch (each its own transaction, so appends in every
 * process wait at most one batch) until nothing before `before` is left; `onBatch` after each.
 */
export async function purgeAuditLog(
  db: Database,
  before: Date,
  actor: string,
  now: Date,
  requestId: string | null,
  onBatch?: (run: AuditPurgeRun) => void,
): Promise<AuditPurgeRun> {
  const run: AuditPurgeRun = { purged: 0, through: null, events: [] };
  for (;;) {
    const batch = await purgeAuditEventsBefore(db, before, actor, now, requestId);
    run.purged += batch.purged;
    run.through = batch.through ?? run.through;
    run.events.push(batch.event);
    onBatch?.(run);
    if (!batch.more) return run;
  }
}
