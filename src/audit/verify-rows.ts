import type { Database } from '../db/database.js';
import type { AuditEvent } from './audit-event.js';
import { decisionDigest, grantDigest } from './row-digest.js';
import { RETENTION_CLOCK_MARGIN_SECONDS, ROW_RETENTION_SECONDS } from './row-retention.js';

/** Events that chain the digest of a row the trail serves, and the table that row lives in. */
const ROW_EVENTS: Record<string, 'decisions' | 'grants'> = { 'decision.recorded': 'decisions', 'grant.minted': 'grants' };

/** A decisions or grants row that no longer matches the digest the chain holds for it (or is gone). */
export interface RowBreak {
  seq: string;
  table: 'decisions' | 'grants';
  id: string;
  reason: 'row_edited' | 'row_missing';
}

/** How a row compares with its chained digest: `unrecorded` when no event on the chain holds one. */
export type RowIntegrity = 'intact' | 'edited' | 'unrecorded';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const chainedDigest = (e: AuditEvent): string | undefined => (typeof e.data.row_sha256 === 'string' ? e.data.row_sha256 : undefined);

/** The integrity of one row given its digest now and the event that chained it (if still on the chain). */
export function rowIntegrity(digestNow: string, event: AuditEvent | undefined): RowIntegrity {
  const chained = event && chainedDigest(event);
  if (!chained) return 'unrecorded';
  return chained === digestNow ? 'intact' : 'edited';
}

/** Whether the purge job may have deleted the row an event chained by `now`: only then may it be missing. */
const pastRetention = (e: AuditEvent, table: 'decisions' | 'grants', now: Date) =>
  e.at.getTime() < now.getTime() - (ROW_RETENTION_SECONDS[table] - RETENTION_CLOCK_MARGIN_SECONDS) * 1000;

/**
 * Re-digests every decisions and grants row that `events` chained a digest of, two queries per call,
 * and returns the first (by seq) that was edited, or deleted after the fact. A row whose event is
 * older than that table's retention may be gone (the purge job deletes it then); an edited one is
 * reported whatever its age.
 */
export async function checkChainedRows(db: Database, events: readonly AuditEvent[], now: Date): Promise<RowBreak | null> {
  const wanted = events.filter((e) => ROW_EVENTS[e.action] && chainedDigest(e) && e.target_id);
  if (wanted.length === 0) return null;
  // Both ids are uuid columns; an event naming something else (forged) simply finds no row.
  const ids = (table: 'decisions' | 'grants') => wanted.filter((e) => ROW_EVENTS[e.action] === table && UUID.test(e.target_id!)).map((e) => e.target_id!);
  const digests = new Map<string, string>();
  const decisionIds = ids('decisions');
  if (decisionIds.length) {
    for (const d of await db.selectFrom('decisions').selectAll().where('id', 'in', decisionIds).execute()) digests.set(`decisions:${d.id}`, decisionDigest(d));
  }
  const grantIds = ids('grants');
  if (grantIds.length) {
    for (const g of await db.selectFrom('grants').selectAll().where('id', 'in', grantIds).execute()) digests.set(`grants:${g.id}`, grantDigest(g));
  }
  for (const e of wanted) {
    const table = ROW_EVENTS[e.action]!;
    const digest = digests.get(`${table}:${e.target_id}`);
    if (digest === undefined && pastRetention(e, table, now)) continue;
    if (digest !== chainedDigest(e)) return { seq: e.seq, table, id: e.target_id!, reason: digest ? 'row_edited' : 'row_missing' };
  }
  return null;
}
