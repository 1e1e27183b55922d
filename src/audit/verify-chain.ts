import type { Database } from '../db/database.js';
import { AUDIT_PURGED_ACTION, computeAuditHash, type AuditChainHead, type AuditEvent } from './audit-event.js';
import { AUDIT_EVENT_COLUMNS, readAuditAnchor, readAuditHead } from './audit.repository.js';

// Rows per round trip: keeps memory flat on a table of any size.
const DEFAULT_BATCH_ROWS = 1_000;
// How far from its position a moved row is looked for, to call a break a reorder rather than an
// edit; only runs on a row that already failed, so its cost never touches a healthy chain.
const REORDER_SEARCH_WINDOW = 1_000;

/**
 * Why verification stopped: `hash_mismatch` a row's content was edited; `prev_hash_mismatch` a row
 * does not link to the one before it (that one was replaced, or this link rewritten); `gap` a seq is
 * missing (deleted); `reorder` a row's content is authentic but belongs at another seq; `anchor_mismatch`
 * the retention anchor moved without a retention event recording it (a silent purge of the oldest rows).
 */
export type AuditChainBreak = 'hash_mismatch' | 'prev_hash_mismatch' | 'gap' | 'reorder' | 'anchor_mismatch';

export type AuditChainVerification =
  | { ok: true; count: number }
  /** `count` rows verified before the break; `brokenAt` the first bad seq (for a gap, the missing one). */
  | { ok: false; count: number; brokenAt: string; reason: AuditChainBreak };

export interface VerifyAuditChainOptions {
  batchSize?: number;
  onProgress?: (checked: number, total: number) => void;
}

function movedFrom(row: AuditEvent): boolean {
  const seq = BigInt(row.seq);
  for (let d = 1n; d <= REORDER_SEARCH_WINDOW; d++) {
    for (const other of [seq - d, seq + d]) {
      if (other > 0n && computeAuditHash(row.prev_hash, { ...row, seq: other.toString() }) === row.hash) return true;
    }
  }
  return false;
}

function checkRow(row: AuditEvent, expected: AuditChainHead): { brokenAt: string; reason: AuditChainBreak } | null {
  const expectedSeq = (BigInt(expected.seq) + 1n).toString();
  if (row.seq !== expectedSeq) return { brokenAt: expectedSeq, reason: 'gap' };
  if (computeAuditHash(row.prev_hash, row) !== row.hash) {
    return { brokenAt: row.seq, reason: movedFrom(row) ? 'reorder' : 'hash_mismatch' };
  }
  if (row.prev_hash !== expected.hash) return { brokenAt: row.seq, reason: 'prev_hash_mismatch' };
  return null;
}

const confirmsAnchor = (row: AuditEvent, anchor: AuditChainHead): boolean =>
  row.action === AUDIT_PURGED_ACTION && row.data.through_seq === anchor.seq && row.data.through_hash === anchor.hash;

async function verify(db: Database, options: VerifyAuditChainOptions): Promise<AuditChainVerification> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_ROWS;
  const anchor = await readAuditAnchor(db);
  // seq is gapless from the anchor, so the last seq gives the total from the primary key alone,
  // where count(*) would scan the whole table (and could outlast the statement timeout).
  const total = Number(BigInt((await readAuditHead(db)).seq) - BigInt(anchor.seq));
  let head = anchor;
  let count = 0;
  let anchorConfirmed = anchor.seq === '0';
  for (;;) {
    const rows = await db
      .selectFrom('audit_events')
      .select(AUDIT_EVENT_COLUMNS)
      .where('seq', '>', head.seq)
      .orderBy('seq')
      .limit(batchSize)
      .execute();
    for (const row of rows) {
      const broken = checkRow(row, head);
      if (broken) return { ok: false, count, ...broken };
      anchorConfirmed ||= confirmsAnchor(row, anchor);
      head = row;
      count++;
    }
    options.onProgress?.(count, total);
    if (rows.length < batchSize) break;
  }
  if (!anchorConfirmed) {
    return { ok: false, count, brokenAt: (BigInt(anchor.seq) + 1n).toString(), reason: 'anchor_mismatch' };
  }
  return { ok: true, count };
}

/**
 * Streams the chain from the retention anchor in seq order and proves every remaining event unedited,
 * in place and linked. Runs in one read-only REPEATABLE READ snapshot, so a concurrent purge or append
 * cannot make a healthy chain look broken. It cannot see the newest events removed: keep the head hash
 * somewhere else too (export it) to detect truncation of the tail.
 */
export function verifyAuditChain(db: Database, options: VerifyAuditChainOptions = {}): Promise<AuditChainVerification> {
  if (db.isTransaction) return verify(db, options);
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute((trx) => verify(trx, options));
}
