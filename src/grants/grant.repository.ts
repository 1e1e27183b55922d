import { sql, type Selectable } from 'kysely';
import type { Database } from '../db/database.js';
import type { GrantTables } from './grant.table.js';

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
}

/**
 * Inserts one grant row on its own (the mint itself goes through insertMint; the bench uses this as
 * the raw INSERT limit). Inserts only if its workload is still active at commit time: a suspension on another replica
 * wins over a registry snapshot that has not caught up yet. The share lock on the workload row orders
 * this insert against a concurrent suspension, whose revoke-by-workload then sees the new grant.
 * Returns false when nothing was inserted.
 */
export async function insertGrantIfWorkloadActive(db: Database, g: NewGrant): Promise<boolean> {
  const result = await sql`
    insert into grants (id, workload_id, task, params, scopes, audience, purpose, issued_at, expires_at, status,
      decision_id, approval_id, parent_id, max_uses, cnf_jkt, kid, token_sha256, identity, status_idx)
    select ${g.id}, ${g.workload_id}, ${g.task}, ${JSON.stringify(g.params)}::jsonb, ${g.scopes}::text[], ${g.audience},
      ${g.purpose}, ${g.issued_at}, ${g.expires_at}, 'active', ${g.decision_id}, ${g.approval_id}, ${g.parent_id},
      ${g.max_uses}, ${g.cnf_jkt}, ${g.kid}, ${g.token_sha256}, ${JSON.stringify(g.identity)}::jsonb, ${g.status_idx}
    where exists (select 1 from workloads where id = ${g.workload_id} and status = 'active' for share)`.execute(db);
  return Number(result.numAffectedRows ?? 0) === 1;
}

export async function findGrant(db: Database, id: string): Promise<GrantRow | undefined> {
  return db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Which grants an end applies to. Bulk selectors only reach grants issued before the end began. */
export type GrantSelector =
  | { grantIds: string[] }
  | { workloadId: string }
  | { task: string }
  | { issuer: string }
  | { kid: string }
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
  if ('all' in s) return sql`status = 'active' ${issuedBefore}`;
  return sql`status = 'active' and expires_at <= ${s.expiredAt}`;
}

/**
 * Ends the active grants a selector picks, in one statement, and returns exactly the rows it changed.
 * The `status = 'active'` condition on the update makes every end a single state change however many
 * replicas, jobs and admins race: a row another transaction ended first is re-checked and skipped.
 */
export async function endActiveGrants(trx: Database, selector: GrantSelector, end: GrantEnd, o: EndOptions): Promise<GrantRow[]> {
  const lock = o.skipLocked ? sql`for update skip locked` : sql`for update`;
  const children = o.cascade
    ? sql`union select g.id, false from grants g join tree t on g.parent_id = t.id`
    : sql``;
  const { rows } = await sql<GrantRow>`
    with recursive roots as (
      select id from grants where ${selectorCondition(selector, end.at)}
      order by expires_at, id limit ${o.limit} ${lock}
    ), tree(id, root) as (
      select id, true from roots ${children}
    )
    update grants g set status = ${end.status}, ended_at = ${end.at}, ended_by = ${end.by},
      end_reason = case when tree.root then ${end.reason} else ${'parent grant ended: ' + end.reason} end,
      end_decision_id = ${end.decisionId ?? null}
    from tree
    where g.id = tree.id and g.status = 'active'
    returning g.*`.execute(trx);
  return rows;
}
