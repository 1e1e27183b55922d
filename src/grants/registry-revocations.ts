import type { Database } from '../db/database.js';
import type { GrantSelector } from './grant.repository.js';
import { endGrantsInTransaction } from './end-grants.js';

/** What a registry change can take away from a grant, and the reason its end records. */
const GONE: Array<[GrantSelector, string]> = [
  [{ workloadStatus: 'suspended' }, 'workload suspended'],
  [{ workloadStatus: 'retired' }, 'workload retired'],
  [{ taskRemoved: true }, 'task removed'],
  [{ issuerRemoved: true }, 'issuer removed'],
];

/**
 * Revokes, inside a registry change's transaction (a configuration version, an admin edit), every
 * active grant the registry no longer stands behind: its workload suspended or retired, its task
 * deleted, or the issuer that proved its identity deleted; delegated children go with them. Atomic
 * with the change, so no replica serves the new registry while such a grant is still active. Returns
 * the ids it revoked.
 */
export async function revokeGrantsOutsideRegistry(trx: Database, actor: string, now: Date): Promise<string[]> {
  const revoked: string[] = [];
  for (const [selector, reason] of GONE) {
    const ended = await endGrantsInTransaction(trx, selector, { status: 'revoked', by: actor, reason, at: now, decisionId: null }, { cascade: true });
    revoked.push(...ended.map((g) => g.id));
  }
  return revoked;
}
