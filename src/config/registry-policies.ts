import type { Database } from '../db/database.js';
import { invalidRequest } from '../lib/errors.js';
import { compilePolicySet, PolicyValidationError } from '../policy/index.js';
import { documentPolicyInput } from './load-folder.js';
import { readLatestDocument } from './registry.repository.js';
import type { TaskSpec } from './spec.js';

/**
 * The policy version of the registry as an admin edit leaves it inside `trx` (its tasks, the latest
 * document's signal types, calendars and policies); null without policies. An edit that breaks the
 * policies is a 400 naming each problem: committed, the next reload would deny every request. When
 * they were broken already (`brokenBefore`), the edit goes through with a null version: it may be the
 * repair, and suspending a workload in an incident must never wait for a policy fix.
 */
export async function policiesAfterEdit(trx: Database, brokenBefore: boolean): Promise<string | null> {
  const doc = await readLatestDocument(trx);
  if (!doc?.policies.length) return null;
  const tasks = await trx.selectFrom('tasks').select('spec').orderBy('name').execute();
  try {
    return compilePolicySet(documentPolicyInput({ ...doc, tasks: tasks.map((r) => r.spec as TaskSpec) })).version;
  } catch (err) {
    if (!(err instanceof PolicyValidationError)) throw err;
    if (brokenBefore) return null;
    throw invalidRequest(
      'The change would leave the policies invalid, and every request would be denied; change the policies first.',
      err.problems.map((reason) => ({ field: 'policies', reason })),
    );
  }
}
