import { sql } from 'kysely';
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

/** The newest observation of each (type, subject) pair asked for, in one query; of two observed at the same instant, the one received last. */
export async function latestSignals(db: Database, keys: Array<{ type: string; subject: string }>): Promise<StoredSignal[]> {
  if (!keys.length) return [];
  const types = keys.map((k) => k.type);
  const subjects = keys.map((k) => k.subject);
  const { rows } = await sql<StoredSignal>`
    select distinct on (s.type, s.subject) s.type, s.subject, s.value, s.source, s.observed_at, s.expires_at, s.received_at
    from signals s
    join unnest(${types}::text[], ${subjects}::text[]) as k(type, subject) on s.type = k.type and s.subject = k.subject
    order by s.type, s.subject, s.observed_at desc, s.id desc`.execute(db);
  return rows;
}

/** Deletes observations that can no longer matter: older than `before` and superseded or expired. */
export async function purgeSignalsBefore(db: Database, before: Date): Promise<number> {
  const r = await db.deleteFrom('signals').where('observed_at', '<', before).executeTakeFirst();
  return Number(r.numDeletedRows);
}
