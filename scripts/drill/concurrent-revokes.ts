import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { spawnBroker } from '../lib/broker-process.js';
import { MINT_BODY } from '../lib/identities.js';
import { verdict, type Drill } from './drill.js';

const CALLERS = 100;
const ROUNDS = 20;

/** Audit events about one grant with one action, staged or already chained. */
async function auditCount(ctx: Parameters<Drill>[0], grantId: string, action: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select (select count(*) from audit_pending where target_id = ${grantId} and action = ${action})
         + (select count(*) from audit_events where target_id = ${grantId} and action = ${action}) as n`.execute(ctx.db);
  return Number(rows[0]!.n);
}

/**
 * 100 concurrent `POST /v1/admin/grants/{id}/revoke` of one grant minted through the broker, 20 rounds:
 * exactly one caller changes it, the final state is `revoked`, and the grant has one CAEP event and one
 * `grant.revoked` audit event.
 */
export const concurrentRevokes: Drill = async (ctx) => {
  const adminKey = `tsk_${randomBytes(24).toString('base64url')}`;
  const broker = await spawnBroker({ ...ctx.pg.broker, configDir: ctx.configDir, kek: ctx.kek, env: { TESSERA_BOOTSTRAP_ADMIN_KEY: adminKey } });
  try {
    const revoke = (grantId: string, i: number) =>
      fetch(`${broker.url}/v1/admin/grants/${grantId}/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ reason: `drill caller ${i}` }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { changed?: boolean; status?: string } }));

    let roundsWithOneWinner = 0;
    let roundsRevoked = 0;
    let roundsWithOneEvent = 0;
    let roundsWithOneAuditEvent = 0;
    const statuses: Record<string, number> = {};
    for (let round = 0; round < ROUNDS; round++) {
      const minted = await fetch(`${broker.url}/v1/grants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ctx.issuer.token()}` },
        body: MINT_BODY,
      });
      if (minted.status !== 201) throw new Error(`mint for the drill answered ${minted.status}: ${await minted.text()}`);
      const grantId = ((await minted.json()) as { grant_id: string }).grant_id;
      const results = await Promise.all(Array.from({ length: CALLERS }, (_, i) => revoke(grantId, i)));
      for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (results.filter((r) => r.body.changed === true).length === 1) roundsWithOneWinner++;
      if (results.every((r) => r.status === 200 && r.body.status === 'revoked')) roundsRevoked++;
      const events = await ctx.db.selectFrom('security_events').select('grant_id').where('grant_id', '=', grantId).execute();
      if (events.length === 1) roundsWithOneEvent++;
      if ((await auditCount(ctx, grantId, 'grant.revoked')) === 1) roundsWithOneAuditEvent++;
    }
    return verdict('100 concurrent revokes of one grant', {
      'exactly one caller changes the grant, every round': roundsWithOneWinner === ROUNDS,
      'every caller is answered 200 with the final state revoked': roundsRevoked === ROUNDS,
      'exactly one CAEP revocation event per grant': roundsWithOneEvent === ROUNDS,
      'exactly one grant.revoked audit event per grant': roundsWithOneAuditEvent === ROUNDS,
    }, { callers: CALLERS, rounds: ROUNDS, statuses, via: 'POST /v1/admin/grants/{id}/revoke on a broker process' });
  } finally {
    await broker.stop();
  }
};
