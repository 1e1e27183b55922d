import type { CompiledTask } from '../config/registry.js';
import type { Principal } from '../identity/authenticate.js';

export type Outcome = 'allow' | 'step_up' | 'deny';

/** What the decision step is asked: who, which task, with what parameters and purpose. */
export interface DecisionInput {
  principal: Principal;
  task: CompiledTask;
  params: Record<string, unknown>;
  purpose: string | null;
  requestId: string;
}

/** The answer: outcome, reasons the workload may see, an optional TTL cap, and the decision's id. */
export interface Decision {
  id: string | null;
  outcome: Outcome;
  reasons: string[];
  maxTtlSeconds?: number | undefined;
}

/** Decides one request. The grant service depends on this seam, not on how the decision is made. */
export type Decider = (input: DecisionInput, now: Date) => Promise<Decision>;

/**
 * The static decision: a workload may have a task if the task lists it. This is what runs when no
 * policy engine is configured; dynamic approval (signals + Cedar) replaces it.
 */
export const taskListDecider: Decider = async ({ principal, task }) =>
  task.allows(principal.workload.id)
    ? { id: null, outcome: 'allow', reasons: [] }
    : { id: null, outcome: 'deny', reasons: [`workload ${principal.workload.id} may not request task ${task.spec.name}`] };
