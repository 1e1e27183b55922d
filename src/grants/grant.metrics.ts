import { metrics } from '../lib/metrics.js';

/** Grants minted, by task. */
export const grantsMinted = metrics.counter('tessera_grants_minted_total', 'Grants minted, by task.');

/** Grants ended, by final status and who ended them (system, admin, policy, workload). */
export const grantsEnded = metrics.counter('tessera_grants_ended_total', 'Grants ended, by status and initiating entity.');

/**
 * How late each expiry was processed: seconds between a grant's `exp` and the sweep that marked it
 * expired. The token itself stops verifying at `exp`; lag only delays introspection-free signals
 * (events, status list) and so is what operators watch.
 */
export const expiryLag = metrics.histogram(
  'tessera_grant_expiry_lag_seconds',
  'Seconds between a grant expiring and the sweep marking it expired.',
  [0.5, 1, 2, 5, 10, 30, 60, 300, 900],
);
