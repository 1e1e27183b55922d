import { metrics } from '../lib/metrics.js';

/**
 * Seconds each policy evaluation took on the request thread (building Cedar's context, the call, and
 * on a step-up the approver policies): requests, re-evaluations and what-ifs alike. Its sum against the
 * process's CPU is the share of the broker's work that goes to policy.
 */
export const policyEvaluation = metrics.histogram(
  'tessera_policy_evaluation_seconds',
  'Seconds each policy evaluation took, approver policies of a step-up included.',
  [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05],
);
