import { expireGrants } from '../grants/expire-grants.job.js';
import { publishStatusList } from '../grants/status-list.service.js';
import { deliverWebhooks } from '../events/deliver-webhooks.job.js';
import { purgeExpired } from './jobs/purge.job.js';
import type { Job } from './job.js';
import { reevaluateDueGrants } from '../decisions/reevaluation.js';
import { expireApprovals } from '../approvals/expire-approvals.job.js';
import { deliverApprovalWebhooks } from '../approvals/deliver-approval-webhooks.job.js';

/**
 * The broker's jobs and their cadence (node-cron, with seconds). Every job is idempotent and safe on
 * every replica at once, so each replica schedules all of them; Postgres row locks share the work.
 * Signal arrival re-evaluates at once (in the ingest path); the re-evaluation sweep makes it durable.
 */
export const JOBS: readonly Job[] = [
  // Tokens stop verifying at exp by themselves; the sweep is for events, status list and lag.
  { name: 'expire-grants', schedule: '*/5 * * * * *', run: (deps, now) => expireGrants(deps, now) },
  { name: 'deliver-webhooks', schedule: '*/5 * * * * *', run: (deps, now) => deliverWebhooks(deps, now) },
  // Approval requests nobody decided expire within seconds of their expiry, and approvers are told.
  { name: 'expire-approvals', schedule: '*/5 * * * * *', run: (deps, now) => expireApprovals(deps, now) },
  { name: 'deliver-approval-webhooks', schedule: '*/5 * * * * *', run: (deps, now) => deliverApprovalWebhooks(deps, now) },
  {
    name: 'publish-status-list',
    schedule: '*/10 * * * * *',
    run: async (deps, now) => {
      const published = await publishStatusList(deps, now);
      if (published.otherIssuer) {
        deps.log.warn(
          { issuer: deps.issuer, other_issuer: published.otherIssuer },
          'another broker on this database publishes the status list under another issuer: verifiers of either one\'s tokens fail; give every replica the same TESSERA_ISSUER',
        );
      }
      return { processed: published.entries };
    },
  },
  {
    name: 'rotate-keys',
    schedule: '0 * * * * *',
    run: async (deps, now) => ({ processed: (await deps.keys.rotate(now)) === 'none' ? 0 : 1 }),
  },
  // Often enough that each kind's delete stays small (the replay cache fills with every assertion mint).
  { name: 'purge', schedule: '17 */5 * * * *', run: (deps, now) => purgeExpired(deps, now) },
  // Grants judged on signals that changed, went stale or expired since: policy may refuse what it
  // allowed. The signal hook does this at once; this sweep is what makes it certain.
  { name: 'reevaluate-grants', schedule: '*/5 * * * * *', run: (deps, now) => reevaluateDueGrants(deps, now) },
];
