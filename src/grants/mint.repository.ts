import { CompiledQuery } from 'kysely';
import type { Database } from '../db/database.js';
import type { NewGrant } from './grant.repository.js';

/** Rows to insert into one table, as JSON objects whose keys are its column names. */
export interface TableRows {
  table: 'decisions' | 'grants' | 'usage_baseline' | 'audit_pending';
  rows: Array<Record<string, unknown>>;
  /** `on conflict do nothing` (the usage baseline repeats). */
  ignoreConflicts?: boolean;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** An INSERT … SELECT from jsonb_populate_recordset($n), run only if the workload is still active. */
function guardedInsert(t: TableRows, param: number): string {
  const columns = Object.keys(t.rows[0]!);
  return `insert into ${quote(t.table)} (${columns.map(quote).join(', ')})
    select ${columns.map((c) => `r.${quote(c)}`).join(', ')}
    from jsonb_populate_recordset(null::${quote(t.table)}, $${param}::jsonb) r
    where exists (select 1 from w)${t.ignoreConflicts ? ' on conflict do nothing' : ''}`;
}

/** The statement's text depends only on which tables and columns it writes: built once per shape. */
const statements = new Map<string, string>();

function statementFor(tables: TableRows[]): string {
  const key = tables.map((t) => `${t.table}:${Object.keys(t.rows[0]!).join(',')}:${t.ignoreConflicts ? 1 : 0}`).join('|');
  let text = statements.get(key);
  if (!text) {
    const [grants, ...rest] = tables;
    text = `with w as (select 1 from workloads where id = $1 and status = 'active' for share),
      g as (${guardedInsert(grants!, 2)} returning 1)${rest.map((t, i) => `,\n      x${i} as (${guardedInsert(t, i + 3)})`).join('')}
      select (select count(*) from g)::int as inserted`;
    statements.set(key, text);
  }
  return text;
}

/**
 * Writes a mint in ONE statement: the decision, the grant, the usage baseline and the audit events,
 * each insert guarded on the workload still being active (a share lock on its row orders this against
 * a concurrent suspension). A single statement is atomic like a transaction, but costs one round trip
 * instead of seven: round trips were most of the mint's CPU (each query's socket write). Its text is
 * built once per shape, so a request only serialises its rows. Returns false when the workload is no
 * longer active, in which case nothing was written.
 */
export async function insertMint(db: Database, grant: NewGrant, extra: TableRows[]): Promise<boolean> {
  const tables: TableRows[] = [{ table: 'grants', rows: [{ ...grant, status: 'active', use_count: 0 }] }, ...extra.filter((t) => t.rows.length > 0)];
  const params = [grant.workload_id, ...tables.map((t) => JSON.stringify(t.rows))];
  const result = await db.executeQuery<{ inserted: number }>(CompiledQuery.raw(statementFor(tables), params));
  return result.rows[0]!.inserted === 1;
}
