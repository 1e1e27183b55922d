import { sql, type Selectable } from 'kysely';
import type { Database } from '../db/database.js';
import type { RegistryTables } from './registry.table.js';
import type { WorkloadSpec } from './spec.js';

export type WorkloadStatus = RegistryTables['workloads']['status'];

/** A workload as the admin plane sees it: its spec and its live status with who set it and why. */
export type WorkloadRecord = Omit<Selectable<RegistryTables['workloads']>, 'spec'> & { spec: WorkloadSpec };

export interface WorkloadFilter {
  status?: WorkloadStatus | undefined;
  kind?: WorkloadRecord['kind'] | undefined;
  owner?: string | undefined;
}

const toRecord = (row: Selectable<RegistryTables['workloads']>): WorkloadRecord => ({ ...row, spec: row.spec as WorkloadSpec });

/** Workloads matching `filter`, in id order, starting after the id `after`. */
export async function listWorkloads(db: Database, filter: WorkloadFilter, after: string | undefined, take: number): Promise<WorkloadRecord[]> {
  let q = db.selectFrom('workloads').selectAll().orderBy('id').limit(take);
  if (filter.status) q = q.where('status', '=', filter.status);
  if (filter.kind) q = q.where('kind', '=', filter.kind);
  if (filter.owner) q = q.where('owner', '=', filter.owner);
  if (after !== undefined) q = q.where('id', '>', after);
  return (await q.execute()).map(toRecord);
}

/** One workload; with `forUpdate`, its row stays locked until the transaction ends. */
export async function findWorkload(db: Database, id: string, forUpdate = false): Promise<WorkloadRecord | undefined> {
  const q = db.selectFrom('workloads').selectAll().where('id', '=', id);
  const row = await (forUpdate ? q.forUpdate() : q).executeTakeFirst();
  return row && toRecord(row);
}

/**
 * Creates a workload with the status its spec names, or replaces the spec of an existing one and keeps
 * its live status: status changes go through {@link changeWorkloadStatus}, which also ends grants.
 */
export async function upsertWorkload(trx: Database, spec: WorkloadSpec, actor: string, reason: string, now: Date): Promise<{ created: boolean; workload: WorkloadRecord }> {
  const row = await trx
    .insertInto('workloads')
    .values({
      id: spec.id,
      kind: spec.kind,
      owner: spec.owner,
      status: spec.status,
      spec: JSON.stringify(spec),
      updated_at: now,
      status_changed_at: now,
      status_changed_by: actor,
      status_reason: reason,
    })
    .onConflict((oc) => oc.column('id').doUpdateSet({ kind: spec.kind, owner: spec.owner, spec: JSON.stringify(spec), updated_at: now }))
    .returningAll()
    // xmax is 0 only on a row this statement inserted: how Postgres tells insert from update in one upsert.
    .returning(sql<boolean>`(xmax = 0)`.as('created'))
    .executeTakeFirstOrThrow();
  const { created, ...workload } = row;
  return { created, workload: toRecord(workload) };
}

/**
 * Moves a workload to `to` if its status is one of `from`, recording who and why. Returns undefined when
 * the workload is missing or in another status (the caller tells the two apart).
 */
export async function changeWorkloadStatus(
  trx: Database,
  id: string,
  change: { to: WorkloadStatus; from: readonly WorkloadStatus[]; reason: string; actor: string; at: Date },
): Promise<WorkloadRecord | undefined> {
  const row = await trx
    .updateTable('workloads')
    .set({ status: change.to, status_reason: change.reason, status_changed_by: change.actor, status_changed_at: change.at, updated_at: change.at })
    .where('id', '=', id)
    .where('status', 'in', [...change.from])
    .returningAll()
    .executeTakeFirst();
  return row && toRecord(row);
}

/** Ids of workloads with a binding to issuer `issuerId` (an issuer they need cannot be deleted). */
export async function workloadsBoundTo(db: Database, issuerId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('workloads')
    .select('id')
    .where(sql<boolean>`spec->'bindings' @> ${JSON.stringify([{ issuer: issuerId }])}::jsonb`)
    .orderBy('id')
    .execute();
  return rows.map((r) => r.id);
}

/**
 * The admin lifecycle of a workload: which statuses each verb moves from, and whether the move ends the
 * workload's active grants (suspending or retiring is a kill switch; activating grants nothing by itself).
 */
export const WORKLOAD_TRANSITIONS = {
  suspend: { to: 'suspended', from: ['active'], endsGrants: true },
  retire: { to: 'retired', from: ['active', 'suspended'], endsGrants: true },
  activate: { to: 'active', from: ['suspended', 'retired'], endsGrants: false },
} as const satisfies Record<string, { to: WorkloadStatus; from: readonly WorkloadStatus[]; endsGrants: boolean }>;
export type WorkloadVerb = keyof typeof WORKLOAD_TRANSITIONS;
