import { sql, type Kysely } from 'kysely';

// Frozen: the re-evaluation sweep reads only grants that can be due (2026-12-01). Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // Whether the grant's latest decision read a signal about a subject: only such a grant can go out of
  // date with the signals. The sweep ran its due test on every active grant every 5 s on every replica
  // (measured: 71-98 ms of Postgres per sweep at 50,000 active grants, none of them watching anything).
  // Grants from before this column are assumed to watch: at worst they are tested as before. The
  // column's default is metadata only; the index build holds the table's lock for its duration
  // (0.76 s at 2M rows, measured in review), under the migration pool's long statement timeout.
  await sql`alter table grants add column watches_signals boolean not null default true`.execute(db);
  await sql`create index grants_active_watching on grants (id) where status = 'active' and watches_signals`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists grants_active_watching`.execute(db);
  await sql`alter table grants drop column watches_signals`.execute(db);
}
