import { sql, type Selectable } from 'kysely';
import type { Database } from '../db/database.js';
import type { GrantTables, WatchFresh } from './grant.table.js';

export type GrantRow = Selectable<GrantTables['grants']>;

export interface NewGrant {
  id: string;
  workload_id: string;
  task: string;
  params: Record<string, unknown>;
  scopes: string[];
  audience: string;
  purpose: string | null;
  issued_at: Date;
  expires_at: Date;
  decision_id: string | null;
  approval_id: string | null;
  parent_id: string | null;
  max_uses: number | null;
  cnf_jkt: string | null;
  kid: string;
  token_sha256: string;
  identity: Record<string, unknown>;
  status_idx: number | null;
  /** See watchOf: false keeps the grant out of the re-evaluation sweep. */
  watches_signals: boolean;
  watched_keys: string[] | null;
  due_at: Date | null;
  watch_basis: string | null;
  watch_fresh: WatchFresh | null;
}

export async function findGrant(db: Database, id: string): Promise<GrantRow | undefined> {
  return db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst();
}

/** How many delegation steps separate a grant from the root of its chain (0 for a grant nobody delegated). */
export async function delegationDepth(db: Database, grantId: string): Promise<number> {
  const { rows } = await sql<{ depth: number }>`
    with recursive chain(parent_id, depth) as (
      select parent_id, 0 from grants where id = ${grantId}
      union all select g.parent_id, c.depth + 1 from grants g join chain c on g.id = c.parent_id
    )
    select max(depth)::int as depth from chain`.execute(db);
  return rows[0]?.depth ?? 0;
}

/** Which grants an end applies to. Bulk selectors only reach grants issued before the end began. */
export type GrantSelector =
  | { grantIds: string[] }
  | { workloadId: string }
  | { task: string }
  | { issuer: string }
  | { kid: string }
  | { signedByRevokedKey: true }
  | { workloadStatus: 'suspended' | 'retired' }
  | { taskRemoved: true }
  | { issuerRemoved: true }
  | { all: true }
  | { expiredAt: Date };

export interface GrantEnd {
  status: 'completed' | 'revoked' | 'expired';
  /** `admin:<name>`, `workload:<id>`, `policy:<...>` or `system:<job>`. */
  by: string;
  reason: string;
  at: Date;
  /** The decision that ended the grant (re-evaluation), if any. */
  decisionId?: string | null;
  /** The request that ended it, when a request did (for the audit events). */
  requestId?: string | null;
}

export interface EndOptions {
  /** End the active delegated descendants too (revocation). */
  cascade: boolean;
  /** At most this many selected grants (descendants come on top). */
  limit: number;
  /** Leave grants another worker has locked to that worker (parallel sweeps). */
  skipLocked: boolean;
}

function selectorCondition(s: GrantSelector, at: Date) {
  const issuedBefore = sql`and issued_at <= ${at}`;
  if ('grantIds' in s) return sql`id = any(${s.grantIds}::uuid[])`;
  if ('workloadId' in s) return sql`status = 'active' and workload_id = ${s.workloadId} ${issuedBefore}`;
  if ('task' in s) return sql`status = 'active' and task = ${s.task} ${issuedBefore}`;
  if ('issuer' in s) return sql`status = 'active' and identity->>'issuer' = ${s.issuer} ${issuedBefore}`;
  if ('kid' in s) return sql`status = 'active' and kid = ${s.kid}`;
  if ('signedByRevokedKey' in s) return sql`status = 'active' and kid in (select kid from signing_keys where status = 'revoked')`;
  if ('workloadStatus' in s) return sql`status = 'active' and workload_id in (select id from workloads where status = ${s.workloadStatus}) ${issuedBefore}`;
  if ('taskRemoved' in s) return sql`status = 'active' and task not in (select name from tasks) ${issuedBefore}`;
  // Client assertions are proven against the workload's own keys, not an issuer of the registry.
  if ('issuerRemoved' in s) {
    return sql`status = 'active' and identity->>'method' <> 'client_assertion' and identity->>'issuer' not in (select id from issuers) ${issuedBefore}`;
  }
  if ('all' in s) return sql`status = 'active' ${issuedBefore}`;
  return sql`status = 'active' and expires_at <= ${s.expiredAt}`;
}

/** The columns an end sets; descendants get their own reason. */
const endColumns = (end: GrantEnd, reason: string) => sql`
  status = ${end.status}, ended_at = ${end.at}, ended_by = ${end.by}, end_reason = ${reason}, end_decision_id = ${end.decisionId ?? null}`;

/**
 * Ends the active grants a selector picks, and returns exactly the rows it changed. The
 * `status = 'active'` condition on the update makes every end a single state change however many
 * replicas, jobs and admins race: a row another transaction ended first is re-checked and skipped.
 * With `cascade`, their active delegated descendants end too (see endDescendants).
 */
export async function endActiveGrants(trx: Database, selector: GrantSelector, end: GrantEnd, o: EndOptions): Promise<GrantRow[]> {
  const lock = o.skipLocked ? sql`for update skip locked` : sql`for update`;
  const { rows } = await sql<GrantRow>`
    with roots as (
      select id from grants where ${selectorCondition(selector, end.at)}
      order by expires_at, id limit ${o.limit} ${lock}
    )
    update grants g set ${endColumns(end, end.reason)}
    from roots
    where g.id = roots.id and g.status = 'active'
    returning g.*`.execute(trx);
  if (!o.cascade || rows.length === 0) return rows;
  return [...rows, ...(await endDescendants(trx, rows.map((r) => r.id), end))];
}

/**
 * Ends the active descendants of grants this transaction has just ended, pass after pass until a pass
 * finds none. A child's mint holds a share lock on its parent until it commits and re-checks the
 * parent after waiting, so once a parent is ended here no new child can appear under it; but a child
 * that committed while this transaction waited for the parent's lock is not in the statement snapshot
 * that took the lock. Each pass is a new statement with a new snapshot, which sees it. Within a pass
 * rows are locked in id order, so two overlapping cascades queue rather than deadlock on descendants.
 */
async function endDescendants(trx: Database, rootIds: string[], end: GrantEnd): Promise<GrantRow[]> {
  const ended: GrantRow[] = [];
  for (;;) {
    const { rows } = await sql<GrantRow>`
      with recursive tree(id) as (
        select id from grants where parent_id = any(${rootIds}::uuid[])
        union select g.id from grants g join tree t on g.parent_id = t.id
      ), locked as (
        select id from grants where id in (select id from tree) and status = 'active' order by id for update
      )
      update grants g set ${endColumns(end, `parent grant ended: ${end.reason}`)}
      from locked
      where g.id = locked.id and g.status = 'active'
      returning g.*`.execute(trx);
    if (rows.length === 0) return ended;
    ended.push(...rows);
  }
}
