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
}

/**
 * Inserts a grant only if its workload is still active at commit time: a suspension on another replica
 * wins over a registry snapshot that has not caught up yet. Returns false when nothing was inserted.
 */
export async function insertGrantIfWorkloadActive(db: Database, g: NewGrant): Promise<boolean> {
  const result = await sql`
    insert into grants (id, workload_id, task, params, scopes, audience, purpose, issued_at, expires_at, status,
      decision_id, approval_id, parent_id, max_uses, cnf_jkt, kid, token_sha256, identity)
    select ${g.id}, ${g.workload_id}, ${g.task}, ${JSON.stringify(g.params)}::jsonb, ${g.scopes}::text[], ${g.audience},
      ${g.purpose}, ${g.issued_at}, ${g.expires_at}, 'active', ${g.decision_id}, ${g.approval_id}, ${g.parent_id},
      ${g.max_uses}, ${g.cnf_jkt}, ${g.kid}, ${g.token_sha256}, ${JSON.stringify(g.identity)}::jsonb
    where exists (select 1 from workloads where id = ${g.workload_id} and status = 'active')`.execute(db);
  return Number(result.numAffectedRows ?? 0) === 1;
}

export async function findGrant(db: Database, id: string): Promise<GrantRow | undefined> {
  return db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Ends an active grant (completed, revoked or expired). The status condition makes this a single state
 * change no matter how many replicas or jobs race: only one caller gets the row back.
 */
export async function endGrant(
  db: Database,
  id: string,
  end: { status: 'completed' | 'revoked' | 'expired'; by: string; reason: string; at: Date },
): Promise<GrantRow | undefined> {
  return db
    .updateTable('grants')
    .set({ status: end.status, ended_at: end.at, ended_by: end.by, end_reason: end.reason })
    .where('id', '=', id)
    .where('status', '=', 'active')
    .returningAll()
    .executeTakeFirst();
}
