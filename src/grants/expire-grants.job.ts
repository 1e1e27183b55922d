import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import type { JobResult } from '../scheduler/job.js';
import { END_BATCH_SIZE, endGrants } from './end-grants.js';
import { expiryLag } from './grant.metrics.js';

/**
 * Marks grants past `exp` expired. Replicas sweep in parallel: each batch skips rows another replica
 * has locked, so each grant is expired (and its event recorded) exactly once. Each batch takes its
 * own time from the clock: a long backlog reports the lag of its last batch, not of its first.
 * Grants signed by a revoked key that slipped past its revocation are revoked in the same run.
 */
export async function expireGrants(deps: { db: Database; clock: Clock }, now: Date, batchSize = END_BATCH_SIZE): Promise<JobResult> {
  const ended = await endGrants(
    deps.db,
    { expiredAt: now },
    { status: 'expired', by: 'system:expiry', reason: 'expired', at: now },
    {
      cascade: false,
      skipLocked: true,
      batchSize,
      clock: deps.clock,
      onBatch: (rows, at) => rows.forEach((g) => expiryLag.observe(Math.max(0, at.getTime() - g.expires_at.getTime()) / 1000)),
    },
  );
  // A replica that had not reloaded its keys yet may have committed a grant signed by a key revoked
  // a moment before; its token no longer verifies, and here its grant ends too (status list, events).
  const orphaned = await endGrants(
    deps.db,
    { signedByRevokedKey: true },
    { status: 'revoked', by: 'system:key-revocation', reason: 'signing key revoked', at: now },
    { cascade: true, skipLocked: true, batchSize },
  );
  return { processed: ended.length + orphaned.length, detail: { expired: ended.length, key_revoked: orphaned.length } };
}
