import type { Database } from '../db/database.js';

export interface NewSignal {
  type: string;
  subject: string;
  value: unknown;
  source: string;
  observed_at: Date;
  expires_at: Date | null;
}

export interface StoredSignal extends NewSignal {
  received_at: Date;
}

/** Stores a validated batch in one statement: all of it or none. */
export async function insertSignals(db: Database, signals: NewSignal[], receivedAt: Date): Promise<void> {
  if (!signals.length) return;
  await db
    .insertInto('signals')
    .values(signals.map((s) => ({ ...s, value: JSON.stringify(s.value), received_at: receivedAt })))
    .execute();
}

/** Deletes observations that can no longer matter: older than `before` and superseded or expired. */
export async function purgeSignalsBefore(db: Database, before: Date): Promise<number> {
  const r = await db.deleteFrom('signals').where('observed_at', '<', before).executeTakeFirst();
  return Number(r.numDeletedRows);
}

/** A signal a decision asks for: the newest observation of this type about this subject. */
export type SignalKey = { type: string; subject: string };

/**
 * The text Postgres stores for `s`: a lone surrogate becomes U+FFFD, as String.prototype.toWellFormed
 * gives (ES2024, in Node 20; the project's lib is ES2023). What a key is looked up as, and so what an
 * answer is matched back to it by.
 */
export const asStored = (s: string): string => (s as string & { toWellFormed(): string }).toWellFormed();

/**
 * The keys as Postgres can be asked them. A key with U+0000 can never match (Postgres stores no such
 * text, so no observation has it) and is left out; one with a lone surrogate matches what Postgres
 * made of it as text (asStored). Either would otherwise fail the statement, and
 * with it every request sharing it.
 */
export function storableSignalKeys(keys: SignalKey[]): SignalKey[] {
  return keys.filter((k) => !k.type.includes('\u0000') && !k.subject.includes('\u0000')).map((k) => ({ type: asStored(k.type), subject: asStored(k.subject) }));
}

/** A timestamptz as epoch milliseconds (observations are stored from millisecond Dates): JSON that any year parses back from. */
const epochMs = (column: string) => `floor(extract(epoch from ${column}) * 1000)`;

/**
 * SQL for the newest observation of each key in `keys` (a jsonb array of {type, subject}), as one
 * jsonb array of [type, subject, value, source, observed_at, expires_at, received_at] (times in epoch
 * milliseconds: an ISO string of year 10000, which Postgres stores, would parse to an Invalid Date);
 * of two observed at the same instant, the one received last. A column of the decision's facts read
 * (see FactsReader).
 */
export const latestSignalsColumn = (keys: string) => `coalesce((select jsonb_agg(jsonb_build_array(s.type, s.subject, s.value, s.source,
        ${epochMs('s.observed_at')}, ${epochMs('s.expires_at')}, ${epochMs('s.received_at')}))
      from jsonb_to_recordset(${keys}) as k(type text, subject text)
      cross join lateral (select * from signals s where s.type = k.type and s.subject = k.subject
        order by s.observed_at desc, s.id desc limit 1) s), '[]'::jsonb)`;

/** The observations latestSignalsColumn gives, as stored. */
export function latestSignalsFrom(column: Array<[string, string, unknown, string, number, number | null, number]>): StoredSignal[] {
  return column.map(([type, subject, value, source, observed, expires, received]) => ({
    type,
    subject,
    value,
    source,
    observed_at: new Date(observed),
    expires_at: expires === null ? null : new Date(expires),
    received_at: new Date(received),
  }));
}
