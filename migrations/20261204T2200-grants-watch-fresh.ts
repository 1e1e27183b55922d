import { sql, type Kysely } from 'kysely';

// Frozen: what a grant was judged fresh on, kept on its row for the sweep's candidates (2026-12-04). Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // An observation arriving made every grant watching its key a candidate of every sweep run for a
  // minute, and each candidate was tested against its decision's recorded signals: with an attestor's
  // heartbeat every 5 s and 35,000 grants watching its subject, Postgres spent 41 s of CPU a minute
  // finding that none was due. For each key its latest decision judged fresh, the value, the
  // observation's time and the end of its freshness, with that decision's id, so the candidates leave
  // out the grants the newest observation cannot make due without reading their decisions. Null (an
  // older broker's grant, or none judged fresh): the grant stays a candidate, as before.
  await sql`alter table grants add column watch_fresh jsonb`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table grants drop column watch_fresh`.execute(db);
}
