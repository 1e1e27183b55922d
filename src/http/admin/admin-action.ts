import type { Response } from 'express';
import type { Database } from '../../db/database.js';
import type { Deps } from '../../deps.js';
import { adminOf } from './admin-auth.js';
import { recordAudit } from '../../audit/audit-outbox.js';

/** One admin write, as the audit trail will record it. */
export interface AdminAction {
  /** `admin:<key name>` */
  actor: string;
  /** `<target>.<verb>`, e.g. `workload.suspend`. */
  action: string;
  target_type: string;
  target_id: string;
  request_id: string;
  data: Record<string, unknown>;
}

/** Stages an admin action's audit event inside the transaction of the write it describes: both commit or neither. */
export async function recordAdminAction(trx: Database, action: AdminAction, now: Date): Promise<void> {
  await recordAudit(trx, { ...action, outcome: 'success' }, now);
}

/** The actor string of the admin making this request, as stored on the rows it changes. */
export const actorOf = (res: Response) => `admin:${adminOf(res).name}`;

export type AdminWriteTarget = Pick<AdminAction, 'action' | 'target_type' | 'target_id'>;

/** What an admin write returns: its result, the data its audit event carries, and its target's id when only the write knows it. */
export interface AdminWriteResult<T> {
  result: T;
  data?: Record<string, unknown>;
  target_id?: string;
}

/** The audit record of one admin request's write, once the write said what it did. */
function actionOf(res: Response, actor: string, what: AdminWriteTarget, done: AdminWriteResult<unknown>): AdminAction {
  return { actor, ...what, target_id: done.target_id ?? what.target_id, request_id: String(res.locals.requestId ?? ''), data: done.data ?? {} };
}

/**
 * Runs one admin write in a transaction and records it there: the single path every admin write takes.
 * `write` returns its result and the data the audit event should carry.
 */
export async function adminWrite<T>(
  deps: Pick<Deps, 'db' | 'clock'>,
  res: Response,
  what: AdminWriteTarget,
  write: (trx: Database, actor: string) => Promise<AdminWriteResult<T>>,
): Promise<T> {
  const actor = actorOf(res);
  return deps.db.transaction().execute(async (trx) => {
    const done = await write(trx, actor);
    await recordAdminAction(trx, actionOf(res, actor, what, done), deps.clock.now());
    return done.result;
  });
}

/**
 * The same path for an admin action that commits in steps of its own (revocations end grants in
 * batches, each with its grant-ended events; a key revocation holds the key lock): it runs, then its
 * audit event records what it did. A failure before the action finished records nothing for the admin
 * request, while every grant it already ended keeps its own event.
 */
export async function adminAct<T>(
  deps: Pick<Deps, 'db' | 'clock'>,
  res: Response,
  what: AdminWriteTarget,
  act: (actor: string) => Promise<AdminWriteResult<T>>,
): Promise<T> {
  const actor = actorOf(res);
  const done = await act(actor);
  await recordAdminAction(deps.db, actionOf(res, actor, what, done), deps.clock.now());
  return done.result;
}

/**
 * Reloads this replica's registry after a committed registry write, so the caller's next request sees
 * it. A failed reload does not fail the write, which is committed: polling picks the change up shortly.
 */
export async function refreshAfterWrite(deps: Pick<Deps, 'registry' | 'log'>, requestId: unknown): Promise<void> {
  try {
    await deps.registry.refreshIfChanged();
  } catch (err) {
    deps.log.warn({ req_id: requestId, err: (err as Error).message }, 'registry reload after an admin write failed; polling will retry');
  }
}
