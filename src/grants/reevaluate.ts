import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { Logger } from 'pino';
import type { GrantRow } from './grant.repository.js';
import { revokeGrants } from './revocation.service.js';

/** Which active grants to re-evaluate: those of one workload, or whose identity subject is `subject`. */
export interface ReevaluationFilter {
  workloadId?: string;
  subject?: string;
  /** Grants whose decision read a signal about this subject (a workload, host, issuer, or '*'). */
  signalSubject?: string;
}

/** The policy's answer for one active grant, now; `decisionId` links the revocation to its decision. */
export type GrantDecide = (grant: GrantRow) => Promise<{ allowed: boolean; reason: string; decisionId: string | null }>;

export interface ReevaluationResult {
  evaluated: number;
  /** Grants revoked (or, in a dry run, that would be), with why; cascaded children included. */
  revoked: Array<{ grant_id: string; reason: string; decision_id: string | null; cascaded: boolean }>;
  /** Grants whose decision failed: left active, counted, logged. */
  failed: Array<{ grant_id: string; error: string }>;
  dry_run: boolean;
}

/** Active grants read per page; decisions run one grant at a time between pages. */
const PAGE_SIZE = 200;

/**
 * Continuous authorization: asks `decide` about every active grant the filter picks and revokes
 * those it no longer allows, with the decision's reason and id (a new policy version passes no
 * filter; a signal about a workload or subject passes one). A decision that throws leaves its grant
 * active: a broken policy engine must not become a kill switch. The revocation itself is conditional,
 * so a grant that expired or was revoked meanwhile is left alone.
 */
export async function reevaluateActiveGrants(
  deps: { db: Database; log?: Logger },
  filter: ReevaluationFilter,
  decide: GrantDecide,
  now: Date,
  options: { dryRun?: boolean; actor?: string } = {},
): Promise<ReevaluationResult> {
  const result: ReevaluationResult = { evaluated: 0, revoked: [], failed: [], dry_run: options.dryRun ?? false };
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    let q = deps.db.selectFrom('grants').selectAll().where('status', '=', 'active').where('expires_at', '>', now).where('id', '>', after);
    if (filter.workloadId !== undefined) q = q.where('workload_id', '=', filter.workloadId);
    if (filter.subject !== undefined) q = q.where((eb) => eb(eb.ref('identity', '->>').key('subject'), '=', filter.subject!));
    if (filter.signalSubject !== undefined) {
      const used = JSON.stringify([{ subject: filter.signalSubject }]);
      q = q.where(sql<boolean>`exists (select 1 from decisions d where d.id = grants.decision_id and d.signals->'used' @> ${used}::jsonb)`);
    }
    const page = await q.orderBy('id').limit(PAGE_SIZE).execute();
    for (const grant of page) {
      result.evaluated++;
      let verdict;
      try {
        verdict = await decide(grant);
      } catch (err) {
        result.failed.push({ grant_id: grant.id, error: (err as Error).message });
        deps.log?.error({ grant_id: grant.id, err: (err as Error).message }, 're-evaluation failed; grant left active');
        continue;
      }
      if (verdict.allowed) continue;
      if (result.dry_run) {
        result.revoked.push({ grant_id: grant.id, reason: verdict.reason, decision_id: verdict.decisionId, cascaded: false });
        continue;
      }
      const revoked = await revokeGrants(
        deps.db,
        { grantIds: [grant.id] },
        { actor: options.actor ?? 'policy:reevaluation', reason: verdict.reason, decisionId: verdict.decisionId },
        now,
      );
      for (const g of revoked) {
        result.revoked.push({ grant_id: g.id, reason: g.end_reason ?? verdict.reason, decision_id: g.end_decision_id, cascaded: g.id !== grant.id });
      }
    }
    if (page.length < PAGE_SIZE) return result;
    after = page[page.length - 1]!.id;
  }
}
