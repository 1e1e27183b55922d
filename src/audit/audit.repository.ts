import { CompiledQuery, sql } from 'kysely';
import { PREPARED, type Database } from '../db/database.js';
import { timeOrderedId } from '../lib/ids.js';
import { computeAuditHash, eventColumns, type AuditChainHead, type AuditEvent, type AuditEventInput } from './audit-event.js';
import { assertNoSecrets } from './secret-guard.js';

/** The one advisory-lock key every broker process takes to append: ASCII 'tessaudt' as an int64. */
export const AUDIT_CHAIN_LOCK_KEY = '8387236820440933492';
// Rows hashed and inserted per statement: bounds the size of one jsonb parameter (about 1 KB a row)
// and how long one chunk holds the event loop.
const INSERT_CHUNK_ROWS = 250;
// Caps one page of the trail so an admin query cannot pull the whole table into memory.
const MAX_LIST_LIMIT = 1_000;
// Export pages: large enough to amortise round trips, small enough to keep memory flat.
const EXPORT_BATCH_ROWS = 500;

/** The columns of an event as hashed, listed and exported (not the storage-only `pending_id`). */
export const AUDIT_EVENT_COLUMNS = ['seq', 'id', 'at', 'actor', 'action', 'target_type', 'target_id', 'request_id', 'outcome', 'data', 'prev_hash', 'hash'] as const;

/** An event on its way into the chain; `pending_id` names the staged row it seals, if any. */
export type ChainInput = AuditEventInput & { pending_id?: string };
/** A ChainInput whose data is already in its stored (jsonb) form, the form that is hashed. */
type NormalisedInput = ChainInput & { data: Record<string, unknown> };

/** Runs `fn` in the caller's transaction, or in a new one when `db` is not a transaction. */
export function inTransaction<T>(db: Database, fn: (trx: Database) => Promise<T>): Promise<T> {
  return db.isTransaction ? fn(db) : db.transaction().execute(fn);
}

/**
 * Takes the chain lock for the rest of the transaction. Only READ COMMITTED works: a REPEATABLE READ
 * snapshot is taken before the lock is granted, so the head it reads could be stale and the insert
 * would collide with the event appended meanwhile.
 */
export async function lockAuditChain(trx: Database): Promise<void> {
  const { rows } = await sql<{ isolation: string }>`
    select pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK_KEY}::bigint),
           current_setting('transaction_isolation') as isolation`.execute(trx);
  if (rows[0]?.isolation !== 'read committed') {
    throw new Error(`audit events must be appended in a READ COMMITTED transaction, not ${rows[0]?.isolation}`);
  }
}

/** The anchor: seq and hash of the last purged event (0 and 64 zeros before any purge). */
export function readAuditAnchor(db: Database): Promise<AuditChainHead> {
  return db.selectFrom('audit_anchor').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirstOrThrow();
}

/** The last event's seq and hash, or the anchor when no event remains. */
export async function readAuditHead(trx: Database): Promise<AuditChainHead> {
  const last = await trx
    .selectFrom('audit_events')
    .select(['seq', 'hash'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return last ?? readAuditAnchor(trx);
}

// A JSON round trip first, so what is hashed is exactly what jsonb gives back (Dates become strings,
// undefined keys vanish, NaN becomes null), and verification recomputes the same bytes.
function normalise(event: ChainInput): NormalisedInput {
  const data = JSON.parse(JSON.stringify(event.data ?? {})) as Record<string, unknown>;
  // Postgres keeps microseconds and JS milliseconds; both agree on a millisecond-truncated time.
  const normalised = { ...event, data, ...(event.at && { at: new Date(event.at.getTime()) }) };
  assertNoSecrets(normalised);
  return normalised;
}

/**
 * Appends events as one gapless run of the single chain, under one lock acquisition (bulk jobs).
 * The chain lock is held until the caller's transaction ends, serialising every appender in every
 * process: append LAST in your transaction, right before commit, since whatever runs after it (and
 * the commit itself) is time every other appender waits, and that wait counts against the statement
 * timeout. Throws AuditSecretError before touching the database if an event carries something shaped
 * like a credential.
 */
export async function appendAuditEvents(db: Database, events: readonly ChainInput[], now: Date): Promise<AuditChainHead[]> {
  return appendNormalised(db, events.map(normalise), now);
}

/**
 * Seals staged events (see sealPendingAudit). They passed the secret guard when they were staged
 * (pendingAuditRows) and were read back from jsonb, so they are already in the form that is hashed:
 * neither the guard nor the JSON round trip runs again. (A guard failing here would also stall the
 * chain, since the sealer would meet the same row on every run.)
 */
export function appendStagedEvents(trx: Database, events: readonly NormalisedInput[], now: Date): Promise<AuditChainHead[]> {
  return appendNormalised(trx, events, now);
}

/** The hashed columns plus the storage link, in the order the insert names them. */
const INSERT_COLUMNS = [...AUDIT_EVENT_COLUMNS, 'pending_id'] as const;
/**
 * All rows of a chunk as ONE jsonb parameter: a fixed statement, prepared once per connection, instead
 * of a VALUES list of 13 parameters a row whose text (and plan) changes with every batch size.
 */
const INSERT_EVENTS = `${PREPARED}insert into audit_events (${INSERT_COLUMNS.join(', ')})
  select ${INSERT_COLUMNS.join(', ')} from jsonb_populate_recordset(null::audit_events, $1::jsonb)`;

async function appendNormalised(db: Database, prepared: readonly NormalisedInput[], now: Date): Promise<AuditChainHead[]> {
  if (prepared.length === 0) return [];
  return inTransaction(db, async (trx) => {
    await lockAuditChain(trx);
    let head = await readAuditHead(trx);
    const heads: AuditChainHead[] = [];
    // Hashed and written a chunk at a time: the await between chunks lets requests run, where hashing
    // a whole sealing batch of 2,000 at once held the event loop for over 100 ms (mint p99 44 -> 174 ms
    // while a backlog was sealed).
    for (let i = 0; i < prepared.length; i += INSERT_CHUNK_ROWS) {
      const rows = prepared.slice(i, i + INSERT_CHUNK_ROWS).map((e) => {
        const fields = { seq: (BigInt(head.seq) + 1n).toString(), id: timeOrderedId(), ...eventColumns(e, now), data: e.data };
        const row = { ...fields, prev_hash: head.hash, hash: computeAuditHash(head.hash, fields), pending_id: e.pending_id ?? null };
        head = { seq: row.seq, hash: row.hash };
        return row;
      });
      await trx.executeQuery(CompiledQuery.raw(INSERT_EVENTS, [JSON.stringify(rows)]));
      for (const r of rows) heads.push({ seq: r.seq, hash: r.hash });
    }
    return heads;
  });
}

/** Appends one event; see appendAuditEvents for the lock (append LAST in your transaction). */
export async function appendAuditEvent(db: Database, event: AuditEventInput, now: Date): Promise<AuditChainHead> {
  const [head] = await appendAuditEvents(db, [event], now);
  return head!;
}

export interface ListAuditOptions {
  /** Only events at or after this time. */
  since?: Date;
  targetType?: string;
  targetId?: string;
  /** Keyset paging: only events after this seq (pass the last seq of the previous page). */
  afterSeq?: string;
  /** Page size, capped at 1000. */
  limit: number;
}

/** One page of the trail in seq order, optionally for one target; page on with `afterSeq`. */
export async function listAuditEvents(db: Database, options: ListAuditOptions): Promise<AuditEvent[]> {
  let q = db.selectFrom('audit_events').select(AUDIT_EVENT_COLUMNS).orderBy('seq').limit(Math.min(options.limit, MAX_LIST_LIMIT));
  if (options.since) q = q.where('at', '>=', options.since);
  if (options.targetType !== undefined) q = q.where('target_type', '=', options.targetType);
  if (options.targetId !== undefined) q = q.where('target_id', '=', options.targetId);
  if (options.afterSeq !== undefined) q = q.where('seq', '>', options.afterSeq);
  return q.execute();
}

/**
 * Writes every event (after seq `afterSeq` and since `since`, if given) as one JSON line each, newline-terminated, in seq
 * order, in batches; awaits `write` so a slow sink applies back-pressure. Returns how many it wrote.
 */
export async function exportAuditEvents(
  db: Database,
  options: { since?: Date | undefined; afterSeq?: string | undefined },
  write: (line: string) => void | Promise<void>,
  onProgress?: (written: number) => void,
): Promise<number> {
  let written = 0;
  let afterSeq = options.afterSeq;
  for (;;) {
    const page = await listAuditEvents(db, { since: options.since, afterSeq, limit: EXPORT_BATCH_ROWS });
    for (const event of page) await write(`${JSON.stringify(event)}\n`);
    written += page.length;
    if (page.length > 0) onProgress?.(written);
    if (page.length < EXPORT_BATCH_ROWS) return written;
    afterSeq = page[page.length - 1]!.seq;
  }
}
