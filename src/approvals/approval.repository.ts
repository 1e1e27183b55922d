import { sql, type Selectable } from 'kysely';
import type { Database } from '../db/database.js';
import type { ApprovalStatus, ApprovalTables, Vote } from './approval.table.js';

export type ApprovalRow = Selectable<ApprovalTables['approvals']>;
export type VoteRow = Selectable<ApprovalTables['approval_votes']>;
export type NewApproval = Omit<ApprovalRow, 'params' | 'decided_at' | 'redeemed_at' | 'grant_id' | 'status'> & { params: Record<string, unknown> };

/** Inserts a new pending approval request. */
export async function insertApproval(db: Database, a: NewApproval): Promise<ApprovalRow> {
  return db
    .insertInto('approvals')
    .values({ ...a, params: JSON.stringify(a.params), status: 'pending' })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** One approval; `forUpdate` locks it for a vote so votes on one request are counted one at a time. */
export async function findApproval(db: Database, id: string, forUpdate = false): Promise<ApprovalRow | undefined> {
  const q = db.selectFrom('approvals').selectAll().where('id', '=', id);
  return (forUpdate ? q.forUpdate() : q).executeTakeFirst();
}

/** Votes on one approval, oldest first. */
export async function votesOf(db: Database, approvalId: string): Promise<VoteRow[]> {
  return db.selectFrom('approval_votes').selectAll().where('approval_id', '=', approvalId).orderBy('at').orderBy('approver').execute();
}

/** Votes on each of several approvals, oldest first, in one query: approval id → its votes. */
export async function votesOfEach(db: Database, approvalIds: string[]): Promise<Map<string, VoteRow[]>> {
  const byApproval = new Map<string, VoteRow[]>(approvalIds.map((id) => [id, []]));
  if (!approvalIds.length) return byApproval;
  const rows = await db.selectFrom('approval_votes').selectAll().where('approval_id', 'in', approvalIds).orderBy('at').orderBy('approver').execute();
  for (const v of rows) byApproval.get(v.approval_id)!.push(v);
  return byApproval;
}

/**
 * Records a vote; false when this approver or this person already voted on this approval (the primary
 * key and the one-vote-per-person constraint refuse a second).
 */
export async function insertVote(db: Database, v: { approval_id: string; approver: string; person: string; vote: Vote; comment: string | null; at: Date }): Promise<boolean> {
  const r = await db.insertInto('approval_votes').values(v).onConflict((oc) => oc.doNothing()).executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
}

/** Moves an approval from `from` to `to`; undefined when it was not in `from` any more (another caller won). */
export async function changeApprovalStatus(
  db: Database,
  id: string,
  from: ApprovalStatus,
  to: ApprovalStatus,
  set: { decided_at?: Date; redeemed_at?: Date; grant_id?: string },
  notExpiredAt?: Date,
): Promise<ApprovalRow | undefined> {
  let q = db.updateTable('approvals').set({ status: to, ...set }).where('id', '=', id).where('status', '=', from);
  if (notExpiredAt) q = q.where('expires_at', '>', notExpiredAt);
  return q.returningAll().executeTakeFirst();
}

/**
 * Expires up to `limit` open (pending or approved, not redeemed) approvals past their expiry, skipping
 * rows another replica holds, in one statement; returns exactly the rows it changed.
 */
export async function expireDueApprovals(trx: Database, now: Date, limit: number): Promise<ApprovalRow[]> {
  const { rows } = await sql<ApprovalRow>`
    update approvals a set status = 'expired', decided_at = coalesce(a.decided_at, ${now})
    where a.id in (
      select id from approvals where status in ('pending', 'approved') and expires_at <= ${now}
      order by expires_at limit ${limit} for update skip locked)
    and a.status in ('pending', 'approved')
    returning a.*`.execute(trx);
  return rows;
}

export interface ApprovalFilter {
  status?: ApprovalStatus | undefined;
  workload?: string | undefined;
}

/** Approvals newest first, after the keyset `after` (created_at, id). */
export async function listApprovals(db: Database, f: ApprovalFilter, after: { created_at: string; id: string } | undefined, take: number): Promise<ApprovalRow[]> {
  let q = db.selectFrom('approvals').selectAll();
  if (f.status) q = q.where('status', '=', f.status);
  if (f.workload) q = q.where('workload_id', '=', f.workload);
  if (after) q = q.where((eb) => eb(eb.refTuple('created_at', 'id'), '<', eb.tuple(new Date(after.created_at), after.id)));
  return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(take).execute();
}
