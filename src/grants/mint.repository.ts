import { CompiledQuery } from 'kysely';
import { isRowError, PREPARED, sqlStateClass, type Database } from '../db/database.js';
import type { NewGrant } from './grant.repository.js';
import { TurnBatcher } from '../lib/turn-batcher.js';

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
  const tables = tablesOf({ grant, extra }).map((t) => (t.ignoreConflicts ? { ...t, rows: inKeyOrder(t.rows, (r) => r, Object.keys(t.rows[0]!)) } : t));
  const params = [grant.workload_id, grant.kid, grant.parent_id, ...tables.map((t) => JSON.stringify(t.rows))];
  const result = await db.executeQuery<{ outcome: MintOutcome }>(CompiledQuery.raw(statementFor(tables), params));
  return result.rows[0]!.outcome;
}

/** One mint's write: its grant row and the rows beside it (see insertMint). */
export interface MintWrite {
  grant: NewGrant;
  extra: TableRows[];
}

/** The tables of one mint in statement order, grants first, empty ones left out. */
const tablesOf = (w: MintWrite): TableRows[] => [{ table: 'grants', rows: [{ ...w.grant, status: 'active', use_count: 0 }] }, ...written(w.extra)];

/** The tables beside the grant that a mint writes rows to. */
const written = (extra: TableRows[]) => extra.filter((t) => t.rows.length > 0);

/** An INSERT of the rows tagged with an accepted mint's index: rows are `{ i, row }`, one jsonb array per table. */
function batchInsert(table: string, columns: string[], ignoreConflicts: boolean, param: number): string {
  return `insert into ${quote(table)} (${columns.map(quote).join(', ')})
    select ${columns.map((c) => `r.${quote(c)}`).join(', ')}
    from jsonb_array_elements($${param}::jsonb) e(x), jsonb_populate_record(null::${quote(table)}, e.x->'row') r
    where (e.x->>'i')::int in (select i from ok)${ignoreConflicts ? ' on conflict do nothing' : ''}`;
}

const batchStatements = new Map<string, string>();

/** The batch statement for these tables and columns; like statementFor, built once per shape. */
function batchStatementFor(tables: Array<{ table: string; columns: string[]; ignoreConflicts: boolean }>): string {
  const key = tables.map((t) => `${t.table}:${t.columns.join(',')}:${t.ignoreConflicts ? 1 : 0}`).join('|');
  let text = batchStatements.get(key);
  if (!text) {
    text = `${PREPARED}with m as (select * from jsonb_to_recordset($1::jsonb) as m(i int, workload_id text, kid text, parent_id uuid)),
      w as (select id from workloads where id in (select workload_id from m) and status = 'active' order by id for share),
      k as (select kid from signing_keys where kid in (select kid from m) and status = 'revoked'),
      p as (select id from grants where id in (select parent_id from m where parent_id is not null) and status = 'active' order by id for share),
      ok as (select i from m where workload_id in (select id from w) and kid not in (select kid from k)
        and (parent_id is null or parent_id in (select id from p)))${tables.map((t, n) => `,\n      x${n} as (${batchInsert(t.table, t.columns, t.ignoreConflicts, n + 2)})`).join('')}
      select case when i in (select i from ok) then 'inserted' when kid in (select kid from k) then 'key_revoked'
        when parent_id is not null and parent_id not in (select id from p) then 'parent_ended' else 'workload_inactive' end as outcome
      from m order by i`;
    batchStatements.set(key, text);
  }
  return text;
}

/**
 * The columns a batch writes to `table`: every row of every mint gives its own value for every column
 * any of them names (a key one row lacks is null, as it would be in that mint's own statement). One
 * pass into a Set: the nested flatMaps this replaced were 3 % of the request thread at 32 clients.
 */
function columnsOf(perMint: TableRows[][], table: string): string[] {
  const columns = new Set<string>();
  for (const tables of perMint) {
    const t = tables.find((x) => x.table === table);
    if (t) for (const row of t.rows) for (const key of Object.keys(row)) columns.add(key);
  }
  return [...columns];
}

/**
 * Several mints in ONE statement, each under its own guards (workload active, key not revoked, parent
 * active; see insertMint): one commit and one round trip for all of them, and a mint refused by its
 * guards writes nothing while the others are written. Returns each mint's outcome, in order. Mints must
 * write the same tables (the statement's shape); a statement that fails writes nothing at all.
 */
export async function insertMints(db: Database, writes: MintWrite[]): Promise<MintOutcome[]> {
  const perMint = writes.map(tablesOf);
  const shape = perMint[0]!.map((t) => ({ table: t.table, columns: columnsOf(perMint, t.table), ignoreConflicts: t.ignoreConflicts ?? false }));
  const guards = writes.map((w, i) => ({ i, workload_id: w.grant.workload_id, kid: w.grant.kid, parent_id: w.grant.parent_id }));
  const rows = shape.map((s) => {
    const tagged = perMint.flatMap((tables, i) => (tables.find((x) => x.table === s.table)?.rows ?? []).map((row) => ({ i, row })));
    return JSON.stringify(s.ignoreConflicts ? inKeyOrder(tagged, (t) => t.row, s.columns) : tagged);
  });
  const result = await db.executeQuery<{ outcome: MintOutcome }>(CompiledQuery.raw(batchStatementFor(shape), [JSON.stringify(guards), ...rows]));
  return result.rows.map((r) => r.outcome);
}

/**
 * Errors that may belong to one mint's rows (see isRowError), or a deadlock or serialisation failure
 * between the batch and another statement: worth retrying each mint alone. Anything else (connection
 * lost, Postgres shutting down, a timeout) would fail the retries the same way, only later: every mint
 * of the batch gets it at once.
 */
const rowSpecific = (err: unknown) => isRowError(err) || sqlStateClass(err) === '40';

/**
 * Rows of a table whose inserts may wait on each other's keys (`on conflict do nothing`: a second
 * inserter of a key not yet committed waits for the first) go in one global order, by their column
 * values: two statements that both bring new usage keys of two workloads would otherwise each hold one
 * and wait for the other (a deadlock, found in review: 13 of 60 rounds of two concurrent batches).
 */
function inKeyOrder<T>(rows: T[], values: (r: T) => Record<string, unknown>, columns: string[]): T[] {
  const key = (r: T) => columns.map((c) => String(values(r)[c] ?? '')).join('\u0000');
  return rows.map((r) => ({ r, k: key(r) })).sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0)).map((x) => x.r);
}

/** Mints per statement at most. */
const MAX_MINT_BATCH = 64;

/** A lone mint takes the one-mint statement: measured faster than a batch of one (1,150-1,192 against 894-985/s from 32 callers). */
const writeMints = (db: Database, writes: MintWrite[]): Promise<MintOutcome[]> =>
  writes.length === 1 ? insertMint(db, writes[0]!.grant, writes[0]!.extra).then((o) => [o]) : insertMints(db, writes);

/**
 * Writes mints, sharing one statement among those of one shape that commit in the same turn of the
 * event loop (a group commit, through TurnBatcher). Measured before: each mint's own statement, round
 * trip and commit was most of what Postgres and the broker's socket writes spent per mint at 32
 * clients. A lone mint goes through insertMint as before. If a shared statement fails on something
 * row-specific, each of its mints is retried on its own, so one bad row costs only its own request.
 * Each caller gets its outcome only after the statement that wrote its rows has committed: no token
 * leaves before its grant row is durable.
 */
export class MintWriter {
  /** One batcher per shape (the tables a mint writes): only mints of one shape share a statement. */
  readonly #byShape = new Map<string, TurnBatcher<MintWrite, MintOutcome>>();

  constructor(private readonly db: Database) {}

  write(grant: NewGrant, extra: TableRows[]): Promise<MintOutcome> {
    const write = { grant, extra };
    // The tables tablesOf gives, without copying the grant row to name them.
    const shape = ['grants', ...written(extra).map((t) => t.table)].join(',');
    let batcher = this.#byShape.get(shape);
    if (!batcher) this.#byShape.set(shape, (batcher = new TurnBatcher((writes) => writeMints(this.db, writes), MAX_MINT_BATCH, rowSpecific)));
    return batcher.ask(write);
  }
}
