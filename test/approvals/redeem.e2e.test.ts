import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, post, TEST_ADMIN_KEY } from '../support/broker.js';
import { deliverApprovalWebhooks } from '../../src/approvals/deliver-approval-webhooks.job.js';
import { expireApprovals } from '../../src/approvals/expire-approvals.job.js';
import { MAX_ATTEMPTS } from '../../src/events/deliver-webhooks.job.js';
import { startApprovalWorld, startReceiver, type ApprovalWorld } from './support.js';

let w: ApprovalWorld;
const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}` };
const nowS = () => Math.floor(w.broker.clock.now().getTime() / 1000);
const params = (destination: string) => ({ params: { destination } });
/** The pipeline (an OIDC workload: its token can be presented again) asks; returns the approval id. */
async function pipelineAsks(destination: string, token?: string): Promise<{ id: string; token: string }> {
  const identity = token ?? (await w.ci.token());
  const res = await post(`${w.broker.url}/v1/grants`, { task: 'export-data', ...params(destination) }, { authorization: `Bearer ${identity}` });
  expect(res.status).toBe(202);
  return { id: res.body.approval_id as string, token: identity };
}
const redeemAs = (id: string, token: string, destination: string) => post(`${w.broker.url}/v1/approvals/${id}/redeem`, params(destination), { authorization: `Bearer ${token}` });
const putPolicy = (file: string, text: string) => fetch(`${w.broker.url}/v1/admin/policies/${file}`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
const deletePolicy = (file: string) => fetch(`${w.broker.url}/v1/admin/policies/${file}`, { method: 'DELETE', headers: admin });

beforeAll(async () => {
  w = await startApprovalWorld();
});
afterAll(() => w.close());

describe('redeem needs a fresh identity', () => {
  it('refuses the token that opened the request and any token issued before it; a new one redeems', async () => {
    w.broker.clock.advance(60);
    const counted = () => w.broker.deps.requests.ownSince('pipeline', new Date(0));
    const asked = counted();
    const { id, token } = await pipelineAsks('s3://fresh');
    expect(counted()).toBe(asked + 1);
    expect((await w.vote(w.keys.bob, id, 'approve')).body.status).toBe('approved');
    expect(await redeemAs(id, token, 's3://fresh')).toMatchObject({ status: 403, body: { code: 'stale_identity' } });
    const older = await w.ci.token({}, { iat: nowS() - 30 });
    expect(await redeemAs(id, older, 's3://fresh')).toMatchObject({ status: 403, body: { code: 'stale_identity' } });
    w.broker.clock.advance(1);
    const redeemed = await redeemAs(id, await w.ci.token(), 's3://fresh');
    expect(redeemed.status).toBe(201);
    // The redeem is decided again, and counts once; the two stale ones were refused before any decision.
    expect(counted()).toBe(asked + 2);
  });
});

describe('redeem decides again under the policy in force', () => {
  it('a forbid that applies now refuses the redeem, recorded; the approval stays redeemable once it is gone', async () => {
    const id = (await w.ask('export-data', 's3://freeze')).body.approval_id as string;
    await w.vote(w.keys.bob, id, 'approve');
    expect((await putPolicy('freeze.cedar', '@id("freeze") @reason("export freeze") forbid (principal, action == Action::"export-data", resource);')).status).toBe(201);
    const refused = await w.redeem(id, params('s3://freeze'));
    expect(refused).toMatchObject({ status: 403, body: { code: 'access_denied', reasons: ['export freeze'] } });
    expect(await w.admin(`/decisions/${refused.body.decision_id as string}`)).toMatchObject({ outcome: 'deny', determining_policies: ['freeze'] });
    expect(await w.admin(`/approvals/${id}`)).toMatchObject({ status: 'approved', grant_id: null });

    expect((await deletePolicy('freeze.cedar')).status).toBe(204);
    const redeemed = await w.redeem(id, params('s3://freeze'));
    expect(redeemed.status).toBe(201);
    // The grant's decision is today's: the current policy version, approved by the vote.
    expect(await w.admin(`/decisions/${redeemed.body.decision_id as string}`)).toMatchObject({ outcome: 'allow', reasons: ['approved by admin:bob'], determining_policies: ['export-data-step-up'] });
  });

  it('a step-up that now asks for more approvals than were given refuses the redeem', async () => {
    const id = (await w.ask('export-data', 's3://more')).body.approval_id as string;
    await w.vote(w.keys.bob, id, 'approve');
    expect((await putPolicy('three.cedar', '@id("export-three") @step_up @approvals("3") permit (principal, action == Action::"export-data", resource);')).status).toBe(201);
    expect(await w.redeem(id, params('s3://more'))).toMatchObject({ status: 403, body: { code: 'approval_insufficient' } });
    expect((await deletePolicy('three.cedar')).status).toBe(204);
    expect((await w.redeem(id, params('s3://more'))).status).toBe(201);
  });
});

describe('expiry', () => {
  it("expires at the task's own time (wipe-db: 600 s), not the default", async () => {
    const id = (await w.ask('wipe-db', 'db://short')).body.approval_id as string;
    const a = await w.admin(`/approvals/${id}`);
    expect(Date.parse(a.expires_at) - Date.parse(a.created_at)).toBe(600_000);
    w.broker.clock.advance(599);
    await expireApprovals(w.broker.deps, w.broker.clock.now());
    expect((await w.admin(`/approvals/${id}`)).status).toBe('pending');
    w.broker.clock.advance(1);
    await expireApprovals(w.broker.deps, w.broker.clock.now());
    expect((await w.admin(`/approvals/${id}`)).status).toBe('expired');
  });

  it('an approved request nobody redeemed in time cannot be redeemed, before or after the sweep', async () => {
    const id = (await w.ask('export-data', 's3://late-redeem')).body.approval_id as string;
    expect((await w.vote(w.keys.bob, id, 'approve')).body.status).toBe('approved');
    w.broker.clock.advance(900);
    expect(await w.redeem(id, params('s3://late-redeem'))).toMatchObject({ status: 409, body: { status: 'expired' } });
    await expireApprovals(w.broker.deps, w.broker.clock.now());
    expect(await w.admin(`/approvals/${id}`)).toMatchObject({ status: 'expired', grant_id: null });
    expect(await w.redeem(id, params('s3://late-redeem'))).toMatchObject({ status: 409, body: { status: 'expired' } });
  });
});

describe('the approvals list', () => {
  it('pages newest first with the votes of each request', async () => {
    const ids: string[] = [];
    for (const d of ['s3://p1', 's3://p2', 's3://p3']) {
      ids.unshift((await w.ask('wipe-db', d)).body.approval_id as string);
      w.broker.clock.advance(1);
    }
    await w.vote(w.keys.bob, ids[0]!, 'approve');
    await w.vote(w.keys.carol, ids[2]!, 'deny', 'no');
    const first = await w.admin('/approvals?workload=exporter&limit=2');
    const second = await w.admin(`/approvals?workload=exporter&limit=2&cursor=${first.next_cursor as string}`);
    expect([...first.items, ...second.items].slice(0, 3).map((a: { id: string }) => a.id)).toEqual(ids);
    expect(first.items[0]).toMatchObject({ approvals: 1, votes: [{ approver: 'admin:bob', vote: 'approve' }] });
    expect(first.items[1]).toMatchObject({ approvals: 0, votes: [] });
    expect(second.items[0]).toMatchObject({ status: 'denied', votes: [{ approver: 'admin:carol', comment: 'no' }] });
    const bad = await fetch(`${w.broker.url}/v1/admin/approvals?cursor=${Buffer.from('{"created_at":"x","id":"y"}').toString('base64url')}`, { headers: admin });
    expect(bad.status).toBe(400);
  });
});

describe('notifications', () => {
  it('give up after the last attempt: the delivery stays failed, and is counted', async () => {
    const dead = await startReceiver(() => ({ status: 503 }));
    try {
      const reg = await post(`${w.broker.url}/v1/admin/approval-webhooks`, { url: dead.url }, admin);
      const failedBefore = await failedCount();
      const id = (await w.ask('export-data', 's3://nobody-listens')).body.approval_id as string;
      const row = () =>
        w.broker.database.db.selectFrom('approval_webhook_deliveries').selectAll().where('approval_id', '=', id).where('webhook_id', '=', reg.body.id as string).executeTakeFirstOrThrow();
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        await deliverApprovalWebhooks(w.broker.deps, w.broker.clock.now());
        const d = await row();
        expect(d).toMatchObject({ attempts: attempt, status: attempt < MAX_ATTEMPTS ? 'pending' : 'failed', last_error: 'HTTP 503' });
        if (d.status === 'pending') w.broker.clock.set(d.next_attempt_at);
      }
      // Nothing is retried after the last attempt, however long one waits.
      w.broker.clock.advance(86_400);
      await deliverApprovalWebhooks(w.broker.deps, w.broker.clock.now());
      expect(await row()).toMatchObject({ attempts: MAX_ATTEMPTS, status: 'failed' });
      expect(dead.received.filter((r) => r.body.includes(id))).toHaveLength(MAX_ATTEMPTS);
      expect((await failedCount()) - failedBefore).toBe(1);
      expect(w.broker.logs.some((l) => l.msg === 'approval webhook given up; kept as failed' && l.attempts === MAX_ATTEMPTS)).toBe(true);
    } finally {
      await dead.close();
    }
  });
});

const failedCount = () => metricValue(w.broker.url, 'tessera_approval_webhooks_failed_total');
