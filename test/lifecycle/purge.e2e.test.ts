import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { purgeExpired } from '../../src/scheduler/jobs/purge.job.js';
import { revokeGrants } from '../../src/grants/revocation.service.js';
import { startLifecycleBroker, type Lifecycle } from './support.js';
import { TEST_ADMIN_KEY } from '../support/broker.js';

const DAY = 86_400_000;
let t: Lifecycle;
beforeAll(async () => {
  t = await startLifecycleBroker();
});
afterAll(async () => t.close());

const db = () => t.broker.database.db;
const ago = (ms: number) => new Date(t.broker.clock.now().getTime() - ms);
const count = async (table: string, where = sql`true`) => Number((await sql<{ n: string }>`select count(*) as n from ${sql.table(table)} where ${where}`.execute(db())).rows[0]!.n);

/** A grant of api-deploy that ended `endedAgo` ms ago (or is active), optionally a child of `parent`. */
async function grant(endedAgo: number | null, parent: string | null = null): Promise<string> {
  const id = randomUUID();
  const ended = endedAgo === null ? null : ago(endedAgo);
  await sql`
    insert into grants (id, workload_id, task, params, scopes, audience, issued_at, expires_at, status, ended_at, kid, token_sha256, identity, parent_id)
    values (${id}, 'api-deploy', 'deploy-prod', '{}', '{deploy:write}', 'https://deploy.example', ${ago((endedAgo ?? 0) + 60_000)},
      ${ended ?? ago(-600_000)}, ${ended ? 'revoked' : 'active'}, ${ended}, 'k', md5(${id}), '{}', ${parent})`.execute(db());
  return id;
}

async function decision(createdAgo: number): Promise<string> {
  const id = randomUUID();
  await sql`
    insert into decisions (id, created_at, workload_id, task, outcome, reasons, errors, determining, request, signals, latency_us)
    values (${id}, ${ago(createdAgo)}, 'api-deploy', 'deploy-prod', 'allow', '{}', '{}', '{}', '{}', '{}', 0)`.execute(db());
  return id;
}

describe('purge', () => {
  it('deletes each kind of row past its retention, keeps the rest, and leaves the audit trail alone', async () => {
    await db().insertInto('webhook_subscriptions').values({ id: randomUUID(), url: 'http://127.0.0.1:9/x', audience: 'x', created_by: 'test', created_at: ago(0) }).execute();
    // Old: ended 91 days ago, with a delegated child ended as long ago; young: ended 89 days ago.
    const old = await grant(91 * DAY);
    const oldChild = await grant(91 * DAY, old);
    const young = await grant(89 * DAY);
    const recent = await grant(null);
    // Their events and deliveries, as an end records them (the old ones are then aged).
    await revokeGrants(db(), { grantIds: [recent] }, { actor: 'admin:test', reason: 'events' }, ago(0));
    await sql`insert into security_events (grant_id, type, data, created_at) select id, 'x', '{}', ended_at from grants where id in (${old}, ${oldChild}, ${young})`.execute(db());
    await sql`insert into webhook_deliveries (event_id, subscription_id, status, next_attempt_at, created_at)
      select e.id, s.id, 'failed', now(), now() from security_events e cross join webhook_subscriptions s where e.grant_id in (${old}, ${young})`.execute(db());
    const [oldDecision, youngDecision] = [await decision(93 * DAY), await decision(91 * DAY)];

    await sql`insert into signals (type, subject, value, source, observed_at, received_at) values
      ('runner_trust', 'api-deploy', '"trusted"', 's', ${ago(9 * DAY)}, ${ago(9 * DAY)}),
      ('runner_trust', 'api-deploy', '"trusted"', 's', ${ago(7 * DAY)}, ${ago(7 * DAY)})`.execute(db());
    await sql`insert into request_buckets (workload_id, minute, shard, n) values ('api-deploy', ${ago(3 * 3600_000)}, 0, 1), ('api-deploy', ${ago(60_000)}, 0, 1)`.execute(db());
    // The novelty baseline is 30 days (the default setting): day 32 is past it, day 30 is not.
    await sql`insert into usage_baseline (workload_id, task, param, value_sha256, day) values
      ('api-deploy', 'deploy-prod', '', 'a', (${ago(32 * DAY)}::timestamptz at time zone 'UTC')::date),
      ('api-deploy', 'deploy-prod', '', 'b', (${ago(30 * DAY)}::timestamptz at time zone 'UTC')::date)`.execute(db());
    await sql`insert into assertion_jtis (workload_id, jti, expires_at) values ('agent-1', 'old', ${ago(700_000)}), ('agent-1', 'new', ${ago(-60_000)})`.execute(db());
    await t.broker.deps.audit.flush();
    const auditBefore = await count('audit_events');

    const result = await purgeExpired(t.broker.deps, t.broker.clock.now());
    expect(result.detail).toMatchObject({ grants: 2, decisions: 1, signals: 1, request_buckets: 1, usage_baseline: 1, assertion_jtis: 1 });
    const left = (await db().selectFrom('grants').select('id').where('id', 'in', [old, oldChild, young, recent]).execute()).map((g) => g.id).sort();
    expect(left).toEqual([young, recent].sort());
    expect(await count('security_events', sql`grant_id in (${old}, ${oldChild})`)).toBe(0);
    expect(await count('security_events', sql`grant_id in (${young}, ${recent})`)).toBe(2);
    expect(await count('webhook_deliveries', sql`event_id in (select id from security_events where grant_id = ${young})`)).toBe(1);
    expect((await db().selectFrom('decisions').select('id').where('id', 'in', [oldDecision, youngDecision]).execute()).map((d) => d.id)).toEqual([youngDecision]);
    expect(await count('signals')).toBe(1);
    expect(await count('request_buckets')).toBe(1);
    expect((await db().selectFrom('usage_baseline').select('value_sha256').execute()).map((r) => r.value_sha256)).toEqual(['b']);
    expect((await db().selectFrom('assertion_jtis').select('jti').execute()).map((r) => r.jti)).toEqual(['new']);
    expect(await count('audit_events')).toBe(auditBefore);

    // Nothing is left to purge: a second run deletes nothing.
    expect((await purgeExpired(t.broker.deps, t.broker.clock.now())).processed).toBe(0);
  });

  it('leaves a chain that still verifies: rows past retention may be gone, a young row deleted is still caught', async () => {
    const verify = async () => {
      const res = await fetch(`${t.broker.url}/v1/admin/audit/verify`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    // A real grant life, whose decision and grant digests are on the chain; then 93 days pass.
    const old = await t.mintDeploy();
    expect((await t.admin(`/grants/${old.id}/revoke`, { reason: 'done' })).status).toBe(200);
    const oldDecision = (await db().selectFrom('grants').select('decision_id').where('id', '=', old.id).executeTakeFirstOrThrow()).decision_id;
    t.broker.clock.advance(93 * 86_400);
    const young = await t.mintDeploy();

    await purgeExpired(t.broker.deps, t.broker.clock.now());
    expect(await count('grants', sql`id = ${old.id}`)).toBe(0);
    expect(await count('decisions', sql`id = ${oldDecision}`)).toBe(0);
    expect(await verify()).toMatchObject({ status: 200, body: { ok: true } });

    // The same deletion of a row inside its retention is tampering, and verify names it.
    await sql`delete from grants where id = ${young.id}`.execute(db());
    const minted = await db().selectFrom('audit_events').select('seq').where('action', '=', 'grant.minted').where('target_id', '=', young.id).executeTakeFirstOrThrow();
    expect(await verify()).toMatchObject({ status: 409, body: { ok: false, reason: 'row_missing', table: 'grants', id: young.id, broken_at: minted.seq } });
  });
});
