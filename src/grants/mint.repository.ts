import { CompiledQuery } from 'kysely';
import { PREPARED, type Database } from '../db/database.js';
import type { NewGrant } from './grant.repository.js';

/** Rows to insert into one table, as JSON objects whose keys are its column names. */
export interface TableRows {
  table: 'decisions' | 'grants' | 'usage_baseline' | 'audit_pending';
  rows: Array<Record<string, unknown>>;
  /** `on conflict do nothing` (the usage baseline repeats). */
  ignoreConflicts?: boolean;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** An INSERT … SELECT from jsonb_populate_recordset($n), run only if every guard of the mint holds. */
function guardedInsert(t: TableRows, param: number): string {
  const columns = Object.keys(t.rows[0]!);
  return `insert into ${quote(t.table)} (${columns.map(quote).join(', ')})
    select ${columns.map((c) => `r.${quote(c)}`).join(', ')}
    from jsonb_populate_recordset(null::${quote(t.table)}, $${param}::jsonb) r
    where exists (select 1 from ok)${t.ignoreConflicts ? ' on conflict do nothing' : ''}`;
}

/** The statement's text depends only on which tables and columns it writes: built once per shape. */
const statements = new Map<string, string>();

function statementFor(tables: TableRows[]): string {
  const key = tables.map((t) => `${t.table}:${Object.keys(t.rows[0]!).join(',')}:${t.ignoreConflicts ? 1 : 0}`).join('|');
  let text = statements.get(key);
  if (!text) {
    const [grants, ...rest] = tables;
    text = `${PREPARED}with w as (select 1 from workloads where id = $1 and status = 'active' for share),
      k as (select 1 from signing_keys where kid = $2 and status = 'revoked'),
      p as (select 1 from grants where id = $3::uuid and status = 'active' for share),
      ok as (select 1 from w where not exists (select 1 from k) and ($3::uuid is null or exists (select 1 from p))),
      g as (${guardedInsert(grants!, 4)} returning 1)${rest.map((t, i) => `,\n      x${i} as (${guardedInsert(t, i + 5)})`).join('')}
      select case when exists (select 1 from g) then 'inserted' when exists (select 1 from k) then 'key_revoked'
        when $3::uuid is not null and not exists (select 1 from p) then 'parent_ended' else 'workload_inactive' end as outcome`;
    statements.set(key, text);
  }
  return text;
}

/** What a mint's write did: inserted everything, or nothing and which guard refused it. */
export type MintOutcome = 'inserted' | 'workload_inactive' | 'key_revoked' | 'parent_ended';

/**
 * Writes a mint in ONE statement: the decision, the grant, the usage baseline and the audit events,
 * each insert guarded on the workload still being active (a share lock on its row orders this against
 * a concurrent suspension), on the signing key not being revoked (another replica may have revoked it
 * within this one's key reload interval), and for a delegated child on its parent still being active
 * (a share lock again, so a cascading revocation either sees the child or makes this insert fail).
 * A single statement is atomic like a transaction, but costs one round trip instead of seven: round
 * trips were most of the mint's CPU (each query's socket write). Its text is built once per shape, so
 * a request only serialises its rows. Anything but 'inserted' means nothing was written.
 */
export async function insertMint(db: Database, grant: NewGrant, extra: TableRows[]): Promise<MintOutcome> {
  const tables: TableRows[] = [{ table: 'grants', rows: [{ ...grant, status: 'active', use_count: 0 }] }, ...extra.filter((t) => t.rows.length > 0)];
  const params = [grant.workload_id, grant.kid, grant.parent_id, ...tables.map((t) => JSON.stringify(t.rows))];
  const result = await db.executeQuery<{ outcome: MintOutcome }>(CompiledQuery.raw(statementFor(tables), params));
  return result.rows[0]!.outcome;
}
