import { sql, type RawBuilder } from 'kysely';
import type { Database } from '../db/database.js';
import type { NewGrant } from './grant.repository.js';

/** Rows to insert into one table, as JSON objects whose keys are its column names. */
export interface TableRows {
  table: 'decisions' | 'grants' | 'usage_baseline' | 'audit_pending';
  rows: Array<Record<string, unknown>>;
  /** `on conflict do nothing` (the usage baseline repeats). */
  ignoreConflicts?: boolean;
}

const ident = (name: string) => sql.ref(name);

/** An INSERT … SELECT from jsonb_populate_recordset, run only if the workload is still active. */
function guardedInsert(t: TableRows): RawBuilder<unknown> {
  const columns = Object.keys(t.rows[0]!);
  return sql`insert into ${ident(t.table)} (${sql.join(columns.map(ident))})
    select ${sql.join(columns.map((c) => sql.ref(`r.${c}`)))}
    from jsonb_populate_recordset(null::${ident(t.table)}, ${JSON.stringify(t.rows)}::jsonb) r
    where exists (select 1 from w)
    ${t.ignoreConflicts ? sql`on conflict do nothing` : sql``}`;
}

/**
 * Writes a mint in ONE statement: the decision, the grant, the usage baseline and the audit events,
 * each insert guarded on the workload still being active (a share lock on its row orders this against
 * a concurrent suspension). A single statement is atomic like a transaction, but costs one round trip
 * instead of seven: round trips were most of the mint's CPU (each query's socket write). Returns false
 * when the workload is no longer active, in which case nothing was written.
 */
export async function insertMint(db: Database, grant: NewGrant, extra: TableRows[]): Promise<boolean> {
  const tables = extra.filter((t) => t.rows.length > 0);
  const grantRow = { ...grant, status: 'active', use_count: 0 };
  const ctes = tables.map((t, i) => sql`${sql.raw(`x${i}`)} as (${guardedInsert(t)})`);
  const { rows } = await sql<{ inserted: number }>`
    with w as (select 1 from workloads where id = ${grant.workload_id} and status = 'active' for share),
    g as (${guardedInsert({ table: 'grants', rows: [grantRow] })} returning 1)
    ${ctes.length ? sql`, ${sql.join(ctes)}` : sql``}
    select (select count(*) from g)::int as inserted`.execute(db);
  return rows[0]!.inserted === 1;
}
