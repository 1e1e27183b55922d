import type { Database } from '../db/database.js';
import { AUDIT_PURGED_ACTION, computeAuditHash, type AuditChainHead, type AuditEvent } from './audit-event.js';
import { AUDIT_EVENT_COLUMNS, readAuditAnchor, readAuditHead } from './audit.repository.js';
import { checkChainedRows, type RowBreak } from './verify-rows.js';

// Rows per round trip: keeps memory flat on a table of any size.
const DEFAULT_BATCH_ROWS = 1_000;
// How far from its position a moved row is looked for, to call a break a reorder rather than an
// edit; only runs on a row that already failed, so its cost never touches a healthy chain.
const REORDER_SEARCH_WINDOW = 1_000;

/**
 * Why verification stopped: `hash_mismatch` a row's content was edited; `prev_hash_mismatch` a row
 * does not link to the one before it (that one was replaced, or this link rewritten); `gap` a seq is
 * missing (deleted); `reorder` a row's content is authentic but belongs at another seq; `anchor_mismatch`
 * the retention anchor moved without a retention event recording it (a silent purge of the oldest rows);
 * `truncated` the chain ends before a head seen earlier (the newest events were deleted);
 * `checkpoint_mismatch` the event at a head seen earlier has another hash now (history rewritten);
 * `row_edited` / `row_missing` a decisions or grants row no longer matches the digest its event chained.
 */
export type AuditChainBreak =
  | 'hash_mismatch'
  | 'prev_hash_mismatch'
  | 'gap'
  | 'reorder'
  | 'anchor_mismatch'
  | 'truncated'
  | 'checkpoint_mismatch'
  | RowBreak['reason'];

export type AuditChainVerification =
  /** `head` the last event (or the anchor): keep it elsewhere and pass it back as `expectHead`. */
  | { ok: true; count: number; head: AuditChainHead; checkpoint?: 'matched' | 'purged' }
  /** `count` rows verified before the break; `brokenAt` the first bad seq (for a gap, the missing one). */
  | { ok: false; count: number; brokenAt: string; reason: AuditChainBreak; table?: RowBreak['table']; id?: string };

export interface VerifyAuditChainOptions {
  batchSize?: number;
  onProgress?: (checked: number, total: number) => void;
  /** A head seen earlier (a checkpoint): the chain must still reach it, with the same hash there. */
  expectHead?: AuditChainHead;
  /** The time retention is judged at: a row past its retention may be gone (default: the wall clock). */
  now?: Date;
}

type Broken = Extract<AuditChainVerification, { ok: false }>;

function movedFrom(row: AuditEvent): boolean {
  const seq = BigInt(row.seq);
  for (let d = 1n; d <= REORDER_SEARCH_WINDOW; d++) {
    for (const other of [seq - d, seq + d]) {
      if (other > 0n && computeAuditHash(row.prev_hash, { ...row, seq: other.toString() }) === row.hash) return true;
    }
  }
  return false;
}

function checkRow(row: AuditEvent, expected: AuditChainHead): Pick<Broken, 'brokenAt' | 'reason'> | null {
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

/** Whether the chain still holds a head seen earlier; `seen` is the hash found at its seq while streaming. */
function checkpoint(expected: AuditChainHead, anchor: AuditChainHead, head: AuditChainHead, seen: string | undefined, count: number): Broken | 'matched' | 'purged' {
  const at = BigInt(expected.seq);
  if (at > BigInt(head.seq)) return { ok: false, count, brokenAt: (BigInt(head.seq) + 1n).toString(), reason: 'truncated' };
  if (at < BigInt(anchor.seq)) return 'purged';
  const found = at === BigInt(anchor.seq) ? anchor.hash : seen;
  return found === expected.hash ? 'matched' : { ok: false, count, brokenAt: expected.seq, reason: 'checkpoint_mismatch' };
}

async function verify(db: Database, options: VerifyAuditChainOptions): Promise<AuditChainVerification> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_ROWS;
  const anchor = await readAuditAnchor(db);
  // seq is gapless from the anchor, so the last seq gives the total from the primary key alone,
  // where count(*) would scan the whole table (and could outlast the statement timeout).
  const total = Number(BigInt((await readAuditHead(db)).seq) - BigInt(anchor.seq));
  let head = anchor;
  let count = 0;
  let anchorConfirmed = anchor.seq === '0';
  let seenAtCheckpoint: string | undefined;
  for (;;) {
    const rows = (await db
      .selectFrom('audit_events')
      .select(AUDIT_EVENT_COLUMNS)
      .where('seq', '>', head.seq)
      .orderBy('seq')
      .limit(batchSize)
      .execute()) as AuditEvent[];
    let broken: Broken | null = null;
    const linked: AuditEvent[] = [];
    for (const row of rows) {
      const link = checkRow(row, head);
      if (link) {
        broken = { ok: false, count: count + linked.length, ...link };
        break;
      }
      anchorConfirmed ||= confirmsAnchor(row, anchor);
      if (row.seq === options.expectHead?.seq) seenAtCheckpoint = row.hash;
      head = row;
      linked.push(row);
    }
    // Rows come before links: an edited decision at seq 10 is the first break even if seq 50's link is broken too.
    const row = await checkChainedRows(db, linked, options.now ?? new Date());
    if (row) return { ok: false, count: count + linked.findIndex((e) => e.seq === row.seq), brokenAt: row.seq, reason: row.reason, table: row.table, id: row.id };
    if (broken) return broken;
    count += linked.length;
    options.onProgress?.(count, total);
    if (rows.length < batchSize) break;
  }
  if (!anchorConfirmed) {
    return { ok: false, count, brokenAt: (BigInt(anchor.seq) + 1n).toString(), reason: 'anchor_mismatch' };
  }
  if (!options.expectHead) return { ok: true, count, head: { seq: head.seq, hash: head.hash } };
  const held = checkpoint(options.expectHead, anchor, head, seenAtCheckpoint, count);
  return typeof held === 'string' ? { ok: true, count, head: { seq: head.seq, hash: head.hash }, checkpoint: held } : held;
}

/**
 * Streams the chain from the retention anchor in seq order and proves every remaining event unedited,
 * in place and linked, and every decisions and grants row it chained a digest of unedited. Runs in one
 * read-only REPEATABLE READ snapshot, so a concurrent purge or append cannot make a healthy chain look
 * broken. The newest events removed leave a valid, shorter chain: keep the returned head somewhere
 * else and pass it back as `expectHead` next time to detect that.
 */
export function verifyAuditChain(db: Database, options: VerifyAuditChainOptions = {}): Promise<AuditChainVerification> {
  if (db.isTransaction) return verify(db, options);
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute((trx) => verify(trx, options));
}
