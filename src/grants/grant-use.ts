import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import { recordAudit } from '../audit/audit-outbox.js';
import type { GrantRow } from './grant.repository.js';
import { recordGrantsEnded } from './grant-events.js';

/** What a resource server did with a token: reported uses and introspections alike. */
export interface GrantUse {
  /** `rs:<client id>` of the resource server that saw the use. */
  by: string;
  via: 'introspection' | 'report';
  tool?: string | undefined;
  target?: string | undefined;
  result?: string | undefined;
  /** The request that reported the use or introspected the token. */
  requestId?: string | undefined;
}

/**
 * Counts one use of an active, unexpired grant and stages its audit event, in one transaction. With a
 * use limit, the last use completes the grant ("uses exhausted", with its event) and any later use is
 * refused, and the refusal audited too: returns undefined when the grant cannot be used (ended,
 * expired, or out of uses).
 */
export async function recordGrantUse(db: Database, grantId: string, use: GrantUse, now: Date): Promise<GrantRow | undefined> {
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<GrantRow>`
      update grants set use_count = use_count + 1,
        status = case when use_count + 1 >= max_uses then 'completed' else status end,
        ended_at = case when use_count + 1 >= max_uses then ${now} else ended_at end,
        ended_by = case when use_count + 1 >= max_uses then 'system:uses' else ended_by end,
        end_reason = case when use_count + 1 >= max_uses then 'uses exhausted' else end_reason end
      where id = ${grantId} and status = 'active' and expires_at > ${now} and (max_uses is null or use_count < max_uses)
      returning *`.execute(trx);
    const row = rows[0];
    const event = { actor: use.by, target_type: 'grant', target_id: grantId, request_id: use.requestId ?? null };
    if (!row) {
      await recordAudit(trx, { ...event, action: 'grant.use_refused', outcome: 'refused', data: { via: use.via, tool: use.tool, target: use.target } }, now);
      return undefined;
    }
    await recordAudit(
      trx,
      { ...event, action: 'grant.used', outcome: use.result ?? 'success', data: { via: use.via, tool: use.tool, target: use.target, use_count: row.use_count, max_uses: row.max_uses } },
      now,
    );
    if (row.status === 'completed') await recordGrantsEnded(trx, [row], now, use.requestId ?? null);
    return row;
  });
}
