import { sql, type Kysely } from 'kysely';

// Frozen: the status list reads only grants that ended and have not yet expired (2026-12-01).
// Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // Every publish (every 10 s, on every replica) asks for ended grants with expires_at past a cutoff;
  // the index keeps that a short range scan however many grants ended over the years.
  await sql`create index grants_ended_by_expiry on grants (expires_at) include (status_idx) where status <> 'active'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists grants_ended_by_expiry`.execute(db);
}
