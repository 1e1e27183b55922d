import type { Database } from '../db/database.js';
import { invalidRequest } from '../lib/errors.js';
import { compilePolicySet, PolicyValidationError } from '../policy/index.js';
import { documentPolicyInput } from './load-folder.js';
import { readLatestDocument } from './registry.repository.js';
import type { TaskSpec } from './spec.js';

/**
 * The policy version the registry compiles to as it stands inside `trx` (null without policies), or
 * a 400 naming each policy problem. An admin edit of a task changes the schema the policies are
 * validated against; committed unchecked, the next reload would fail and deny every request.
 */
export async function checkRegistryPolicies(trx: Database): Promise<string | null> {
  const doc = await readLatestDocument(trx);
  if (!doc?.policies.length) return null;
  const tasks = await trx.selectFrom('tasks').select('spec').orderBy('name').execute();
  try {
    return compilePolicySet(documentPolicyInput({ ...doc, tasks: tasks.map((r) => r.spec as TaskSpec) })).version;
  } catch (err) {
    if (!(err instanceof PolicyValidationError)) throw err;
    throw invalidRequest(
      'The change would leave the policies invalid, and every request would be denied; change the policies first.',
      err.problems.map((reason) => ({ field: 'policies', reason })),
    );
  }
}
