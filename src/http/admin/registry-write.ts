import type { Response } from 'express';
import type { Database } from '../../db/database.js';
import type { Deps } from '../../deps.js';
import { lockRegistry, recordRegistryEdit } from '../../config/registry.repository.js';
import { policiesAfterEdit } from '../../config/registry-policies.js';
import { adminWrite, refreshAfterWrite, type AdminWriteResult, type AdminWriteTarget } from './admin-action.js';

/**
 * An admin write to the registry (issuers, workloads, tasks): an admin write that holds the registry
 * lock, is refused when the policies would no longer compile against the result, is recorded as a
 * registry version of its own (which also tells every replica to reload), and reloads this replica
 * before answering.
 */
export async function registryWrite<T>(
  deps: Pick<Deps, 'db' | 'clock' | 'registry' | 'log'>,
  res: Response,
  what: AdminWriteTarget,
  write: (trx: Database, actor: string) => Promise<AdminWriteResult<T>>,
): Promise<T> {
  const result = await adminWrite(deps, res, what, async (trx, actor) => {
    await lockRegistry(trx);
    const done = await write(trx, actor);
    // Before commit: an edit the policies no longer compile against is refused, not applied.
    const policyVersion = await policiesAfterEdit(trx, deps.registry.snapshot.policyError !== undefined);
    const version = await recordRegistryEdit(trx, actor, deps.clock.now(), { action: what.action, target: what.target_id }, policyVersion);
    return { ...done, data: { ...done.data, version } };
  });
  await refreshAfterWrite(deps, res.locals.requestId);
  return result;
}
