import { sql, type Kysely } from 'kysely';

// Frozen: what the re-evaluation sweeps have done, kept where a starting broker can read it (2026-12-04). Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // A broker kept only in memory when its sweep last ran and with which maximum ages the grants'
  // due_at were last brought up to date, so each start (a restart, a rolling deploy, a new replica)
  // recomputed every active watching grant and tested each twice: with 75,000 of them, a starting
  // replica halved the mints of a loaded one for about 30 s. One row: the maximum ages of the last
  // completed full runs, and the moment up to which completed runs have read arrivals.
  await sql`create table reevaluation_sweep (
    id smallint primary key check (id = 1),
    max_ages jsonb not null,
    covered_until timestamptz not null
  )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table reevaluation_sweep`.execute(db);
}
