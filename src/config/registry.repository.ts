import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import { canonicalJson, sha256Hex } from '../lib/hash.js';
import type { ConfigDocument, IssuerSpec, TaskSpec, WorkloadSpec } from './spec.js';
import { recordAudit } from '../audit/audit-outbox.js';
import { policySetVersion } from '../policy/index.js';
import { documentPolicyInput } from './load-folder.js';
import { revokeGrantsOutsideRegistry } from '../grants/registry-revocations.js';
import { retryOnDeadlock } from '../lib/retry.js';

const CONFIG_REASON = 'configuration applied';
const ADMIN_SUSPENDED = sql`workloads.status = 'suspended' and workloads.status_reason is distinct from ${CONFIG_REASON}`;

export interface WorkloadRow {
  id: string;
  status: 'active' | 'suspended' | 'retired';
  spec: WorkloadSpec;
}

export interface RegistryRows {
  epoch: number;
  issuers: IssuerSpec[];
  workloads: WorkloadRow[];
  tasks: TaskSpec[];
  /** The latest applied document: signal types, sources, calendars, policies and settings live there. */
  document: ConfigDocument | null;
  configVersion: string | null;
}

/** The content hash of a configuration document: equal documents apply once. */
export const configHash = (doc: ConfigDocument): string => sha256Hex(canonicalJson(doc));

/** Bumps the registry epoch inside `trx`, telling every replica to reload its snapshot. */
export async function bumpRegistryEpoch(trx: Database): Promise<void> {
  await trx.updateTable('registry_epoch').set({ epoch: sql`epoch + 1` }).where('id', '=', 1).execute();
}

/**
 * Serialises writers of the registry (a configuration apply, an admin edit) until `trx` ends, so no
 * check one of them makes (an issuer still exists, a workload is suspended) goes stale before it commits.
 */
export async function lockRegistry(trx: Database): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('tessera:config-apply'))`.execute(trx);
}

/**
 * Records an edit made through the admin API as a registry version of its own and bumps the epoch. Its
 * content hash matches no document, so the next `tessera apply` of a folder applies in full again and
 * puts back what the folder declares instead of answering "unchanged".
 */
export async function recordRegistryEdit(
  trx: Database,
  actor: string,
  now: Date,
  summary: Record<string, unknown>,
  policyVersion: string | null,
): Promise<string> {
  const version = await trx
    .insertInto('config_versions')
    .values({
      content_hash: `edit:${sha256Hex(canonicalJson({ actor, at: now, summary }))}`,
      applied_by: actor,
      applied_at: now,
      summary: JSON.stringify(summary),
      policy_version: policyVersion,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await revokeGrantsOutsideRegistry(trx, actor, now);
  await bumpRegistryEpoch(trx);
  return version.id;
}

export interface ApplyResult {
  version: string;
  changed: boolean;
  contentHash: string;
  /** Grants ended because their workload, task or issuer left the registry (0 when unchanged). */
  revokedGrants?: number;
}

/**
 * Applies a configuration document atomically as one version: every issuer, task and workload in it is
 * upserted; issuers and tasks not in it are deleted; workloads not in it are retired (history keeps
 * pointing at them). A workload an admin suspended stays suspended. Active grants the new version no
 * longer stands behind (workload suspended or retired, task or issuer gone) are revoked in the same
 * transaction. Applying the same content again changes nothing.
 */
export async function applyConfigDocument(
  db: Database,
  doc: ConfigDocument,
  actor: string,
  now: Date,
  requestId: string | null = null,
): Promise<ApplyResult> {
  // Whole-transaction retry on a deadlock: the apply updates many workload and grant rows, which
  // concurrent mints share-lock and revocations lock; the loser of a cycle rolls back whole.
  return retryOnDeadlock(() => db.transaction().execute(async (trx) => {
    await lockRegistry(trx);
    const result = await applyConfigLocked(trx, doc, actor, now);
    if (!result.changed) return result;
    await recordAudit(
      trx,
      {
        actor,
        action: 'config.applied',
        outcome: 'success',
        request_id: requestId,
        target_type: 'config_version',
        target_id: result.version,
        data: configAuditData(doc, result),
      },
      now,
    );
    return result;
  }));
}

/** What an audit event says about an applied document: its hash and what it holds, never its text. */
export const configAuditData = (doc: ConfigDocument, result: Pick<ApplyResult, 'contentHash' | 'revokedGrants'>) => ({
  content_hash: result.contentHash,
  revoked_grants: result.revokedGrants ?? 0,
  issuers: doc.issuers.length,
  workloads: doc.workloads.length,
  tasks: doc.tasks.length,
  policies: doc.policies.map((p) => p.file),
});

/**
 * Applies a document inside `trx`, whose caller holds the registry lock (see lockRegistry) and records
 * the audit event: an admin write that reads the registry before it applies (one edited entry) reads
 * what it replaces under the same lock.
 */
export async function applyConfigLocked(trx: Database, doc: ConfigDocument, actor: string, now: Date): Promise<ApplyResult> {
  const contentHash = configHash(doc);
  const latest = await trx
    .selectFrom('config_versions')
    .select(['id', 'content_hash'])
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (latest?.content_hash === contentHash) return { version: latest.id, changed: false, contentHash };

  for (const issuer of doc.issuers) {
    await trx
      .insertInto('issuers')
      .values({ id: issuer.id, spec: JSON.stringify(issuer), updated_at: now })
      .onConflict((oc) => oc.column('id').doUpdateSet({ spec: JSON.stringify(issuer), updated_at: now }))
      .execute();
  }
  await deleteMissing(trx, 'issuers', 'id', doc.issuers.map((i) => i.id));

  for (const task of doc.tasks) {
    await trx
      .insertInto('tasks')
      .values({ name: task.name, spec: JSON.stringify(task), updated_at: now })
      .onConflict((oc) => oc.column('name').doUpdateSet({ spec: JSON.stringify(task), updated_at: now }))
      .execute();
  }
  await deleteMissing(trx, 'tasks', 'name', doc.tasks.map((t) => t.name));

  for (const w of doc.workloads) {
    await trx
      .insertInto('workloads')
      .values({
        id: w.id,
        kind: w.kind,
        owner: w.owner,
        status: w.status,
        spec: JSON.stringify(w),
        updated_at: now,
        status_changed_at: now,
        status_changed_by: actor,
        status_reason: CONFIG_REASON,
      })
      .onConflict((oc) =>
        oc.column('id').doUpdateSet({
          kind: w.kind,
          owner: w.owner,
          spec: JSON.stringify(w),
          updated_at: now,
          // Configuration may retire or suspend, and may re-activate what configuration retired,
          // but never lifts a suspension an admin made during an incident.
          status: sql`case when ${ADMIN_SUSPENDED} then workloads.status else ${w.status} end`,
          status_reason: sql`case when ${ADMIN_SUSPENDED} then workloads.status_reason else ${CONFIG_REASON} end`,
        }),
      )
      .execute();
  }
  const keep = doc.workloads.map((w) => w.id);
  let retire = trx
    .updateTable('workloads')
    .set({ status: 'retired', status_reason: 'removed from configuration', status_changed_by: actor, status_changed_at: now })
    .where('status', '<>', 'retired');
  if (keep.length) retire = retire.where('id', 'not in', keep);
  await retire.execute();

  const version = await trx
    .insertInto('config_versions')
    .values({
      content_hash: contentHash,
      applied_by: actor,
      applied_at: now,
      summary: JSON.stringify({
        issuers: doc.issuers.length,
        workloads: doc.workloads.length,
        tasks: doc.tasks.length,
        signal_types: doc.signal_types.length,
        policies: doc.policies.length,
      }),
      document: JSON.stringify(doc),
      policy_version: doc.policies.length ? policySetVersion(documentPolicyInput(doc)) : null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const revoked = await revokeGrantsOutsideRegistry(trx, actor, now);
  await bumpRegistryEpoch(trx);
  return { version: version.id, changed: true, contentHash, revokedGrants: revoked.length };
}

async function deleteMissing(trx: Database, table: 'issuers' | 'tasks', key: 'id' | 'name', keep: string[]) {
  const q = trx.deleteFrom(table);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the key column differs per table
  await (keep.length ? q.where(key as any, 'not in', keep) : q).execute();
}

/** The registry's current epoch: one cheap read a replica polls to know when to reload. */
export async function readRegistryEpoch(db: Database): Promise<number> {
  const row = await db.selectFrom('registry_epoch').select('epoch').where('id', '=', 1).executeTakeFirstOrThrow();
  return Number(row.epoch);
}

/** Applied versions, newest first (without their documents). */
export async function listConfigVersions(db: Database, limit = 100) {
  return db.selectFrom('config_versions').select(['id', 'content_hash', 'applied_by', 'applied_at', 'summary', 'policy_version']).orderBy('id', 'desc').limit(limit).execute();
}

/** The latest applied document (admin edits of single registry entries record versions without one). */
export async function readLatestDocument(db: Database): Promise<ConfigDocument | undefined> {
  const row = await db.selectFrom('config_versions').select('document').where('document', 'is not', null).orderBy('id', 'desc').limit(1).executeTakeFirst();
  return (row?.document as ConfigDocument | null | undefined) ?? undefined;
}

/** A stored document of an earlier version, to restore it. */
export async function readConfigVersionDocument(db: Database, version: string): Promise<ConfigDocument | undefined> {
  const row = await db.selectFrom('config_versions').select('document').where('id', '=', version).executeTakeFirst();
  return (row?.document as ConfigDocument | null | undefined) ?? undefined;
}

/** Everything the request path needs from the registry, read in one consistent snapshot. */
export async function readRegistryRows(db: Database): Promise<RegistryRows> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const epoch = await readRegistryEpoch(trx);
      const issuers = await trx.selectFrom('issuers').select('spec').orderBy('id').execute();
      const tasks = await trx.selectFrom('tasks').select('spec').orderBy('name').execute();
      const workloads = await trx.selectFrom('workloads').select(['id', 'status', 'spec']).orderBy('id').execute();
      // Admin edits of single entries record versions without a document; signal types, calendars,
      // policies and settings live in the latest applied document, which such an edit leaves in force.
      const latest = await trx.selectFrom('config_versions').select('id').orderBy('id', 'desc').limit(1).executeTakeFirst();
      const applied = await readLatestDocument(trx);
      return {
        epoch,
        document: applied ?? null,
        configVersion: latest?.id ?? null,
        issuers: issuers.map((r) => r.spec as IssuerSpec),
        tasks: tasks.map((r) => r.spec as TaskSpec),
        workloads: workloads.map((r) => ({ id: r.id, status: r.status, spec: r.spec as WorkloadSpec })),
      };
    });
}
