import { sql, type Kysely } from 'kysely';

// Frozen: indexes the purge job's retention deletes read by (2026-12-01). Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // Ended grants past retention, oldest first, without scanning the active ones.
  await sql`create index grants_ended_at on grants (ended_at) where status <> 'active'`.execute(db);
  // Signals past retention; signals_latest leads with (type, subject) and cannot serve a time range.
  await sql`create index signals_observed on signals (observed_at)`.execute(db);
  // usage_baseline gets none: it is written on every mint, and its purge is a rare sequential scan.
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists signals_observed`.execute(db);
  await sql`drop index if exists grants_ended_at`.execute(db);
}
