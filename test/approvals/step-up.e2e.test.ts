import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { post, TEST_ADMIN_KEY } from '../support/broker.js';
import { deliverApprovalWebhooks } from '../../src/approvals/deliver-approval-webhooks.job.js';
import { expireApprovals } from '../../src/approvals/expire-approvals.job.js';
import { startApprovalWorld, startReceiver, verifySignature, type ApprovalWorld } from './support.js';

let w: ApprovalWorld;
let notify: Awaited<ReturnType<typeof startReceiver>>;
let secret: string;
const now = () => w.broker.clock.now();
const nowS = () => Math.floor(now().getTime() / 1000);
const deliver = () => deliverApprovalWebhooks(w.broker.deps, now());
/** Notifications the receiver got for one approval, as parsed bodies, after checking every signature. */
const notificationsFor = (id: string) =>
  notify.received
    .filter((r) => r.body.includes(id))
    .map((r) => {
      expect(verifySignature(secret, r.headers['tessera-signature'] as string, r.body, nowS())).toBe(true);
      return JSON.parse(r.body) as { type: string; approval: Record<string, unknown> };
    })
    .filter((b) => b.approval.id === id);

beforeAll(async () => {
  w = await startApprovalWorld();
  notify = await startReceiver();
  const res = await post(`${w.broker.url}/v1/admin/approval-webhooks`, { url: notify.url }, { authorization: `Bearer ${TEST_ADMIN_KEY}` });
  expect(res.status).toBe(201);
  secret = res.body.secret as string;
  expect(secret).toMatch(/^whsec_/);
});
afterAll(async () => {
  await w.close();
  await notify.close();
});

describe('step-up end to end', () => {
  it('request → notify → approve → redeem → single-use token for that one action', async () => {
    const asked = await w.ask('export-data', 's3://new-bucket');
    expect(asked.status).toBe(202);
    expect(asked.body).toMatchObject({ status: 'pending', approvals: 0, required_approvals: 1, reasons: ['export-data needs an approver'] });
    const id = asked.body.approval_id as string;
    expect(asked.headers.get('location')).toBe(`${w.broker.url}/v1/approvals/${id}`);
    expect(asked.body.redeem).toBe(`${w.broker.url}/v1/approvals/${id}/redeem`);

    expect((await deliver()).detail).toMatchObject({ delivered: 1 });
    const [requested] = notificationsFor(id);
    expect(requested).toMatchObject({ type: 'approval.requested', approval: { workload: 'exporter', task: 'export-data', params: { destination: 's3://new-bucket' }, reasons: ['export-data needs an approver'] } });
    // A tampered body or a stale timestamp fails the receiver's check.
    const r0 = notify.received.find((r) => r.body.includes(id))!;
    expect(verifySignature(secret, r0.headers['tessera-signature'] as string, r0.body.replace('new-bucket', 'evil'), nowS())).toBe(false);
    expect(verifySignature(secret, r0.headers['tessera-signature'] as string, r0.body, nowS() + 301)).toBe(false);

    expect((await w.status(id)).body).toMatchObject({ status: 'pending', approvals: 0, required_approvals: 1 });
    // Approvers see the request, the signals and the policy reasons.
    const full = await w.admin(`/approvals/${id}`);
    expect(full).toMatchObject({ status: 'pending', workload_owner: 'alice', params: { destination: 's3://new-bucket' } });
    expect(full.decision).toMatchObject({ outcome: 'step_up', reasons: ['export-data needs an approver'], determining_policies: ['export-data-step-up'], request: { params: { destination: 's3://new-bucket' } } });
    expect(full.decision.signals).toMatchObject({ identity: { method: 'client_assertion' }, broker: { target_is_new: true } });

    const early = await w.redeem(id, { params: { destination: 's3://new-bucket' } });
    expect(early).toMatchObject({ status: 409, body: { code: 'approval_pending' } });

    // alice owns the exporter workload: she may not approve its request.
    expect(await w.vote(w.keys.alice, id, 'approve')).toMatchObject({ status: 403, body: { code: 'self_approval_forbidden' } });
    const approved = await w.vote(w.keys.bob, id, 'approve', 'ticket CHG-1');
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', approvals: 1, votes: [{ approver: 'admin:bob', vote: 'approve', comment: 'ticket CHG-1' }] });
    expect((await w.status(id)).body.status).toBe('approved');
    await deliver();
    expect(notificationsFor(id).map((n) => n.type)).toEqual(['approval.requested', 'approval.approved']);

    expect(await w.redeem(id, { params: { destination: 's3://other-bucket' } })).toMatchObject({ status: 403, body: { code: 'approval_mismatch' } });
    expect(await w.redeem(id, { task: 'wipe-db', params: { destination: 's3://new-bucket' } })).toMatchObject({ status: 403, body: { code: 'approval_mismatch' } });
    expect((await w.redeem(id, { params: { destination: 's3://new-bucket' } }, w.other)).status).toBe(404);
    expect((await w.status(id, w.other)).status).toBe(404);

    const redeemed = await w.redeem(id, { params: { destination: 's3://new-bucket' } });
    expect(redeemed.status).toBe(201);
    const claims = decodeJwt(redeemed.body.access_token as string);
    expect(claims).toMatchObject({ sub: 'exporter', task: 'export-data', authorization_details: [{ task: 'export-data', params: { destination: 's3://new-bucket' } }] });
    expect((claims.exp as number) - (claims.iat as number)).toBe(120);
    const grant = await w.admin(`/grants/${redeemed.body.grant_id as string}`);
    expect(grant).toMatchObject({ approval_id: id, max_uses: 1 });
    const own = await w.admin(`/decisions/${redeemed.body.decision_id as string}`);
    expect(own).toMatchObject({ outcome: 'allow', reasons: ['approved by admin:bob'], grant_id: redeemed.body.grant_id });

    expect(await w.redeem(id, { params: { destination: 's3://new-bucket' } })).toMatchObject({ status: 409, body: { status: 'redeemed' } });
    expect(await w.admin(`/approvals/${id}`)).toMatchObject({ status: 'redeemed', grant_id: redeemed.body.grant_id });

    await w.broker.deps.audit.flush();
    const trail = await w.admin(`/audit/events?target_type=approval&target_id=${id}`);
    expect((trail.items as Array<{ action: string }>).map((e) => e.action)).toEqual(['approval.requested', 'approval.voted', 'approval.approved', 'approval.redeemed']);
  });

  it('the token endpoint answers authorization_pending with the approval id', async () => {
    const res = await post(
      `${w.broker.url}/oauth2/token`,
      {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: await w.identity(),
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        task: 'export-data',
        task_params: JSON.stringify({ destination: 's3://via-oauth' }),
      },
      {},
      true,
    );
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'authorization_pending', approval_id: expect.any(String), status: 'pending', interval: 2 });
    expect(res.body.poll).toBe(`${w.broker.url}/v1/approvals/${res.body.approval_id as string}`);
  });

  it('a deny decides at once, with its comment; the request cannot be redeemed or voted on again', async () => {
    const id = (await w.ask('wipe-db', 'db://orders')).body.approval_id as string;
    expect((await w.vote(w.keys.bob, id, 'approve')).body).toMatchObject({ status: 'pending', approvals: 1 });
    const denied = await w.vote(w.keys.carol, id, 'deny', 'not during the freeze');
    expect(denied.body).toMatchObject({ status: 'denied', votes: [{ approver: 'admin:bob' }, { approver: 'admin:carol', vote: 'deny', comment: 'not during the freeze' }] });
    expect(await w.redeem(id, { params: { destination: 'db://orders' } })).toMatchObject({ status: 409, body: { status: 'denied' } });
    expect((await w.vote(w.keys.alice, id, 'approve')).status).toBe(409);
    await deliver();
    // Both were due in one run and go out in parallel: receivers order by `created_at`, not arrival.
    expect(notificationsFor(id).map((n) => n.type).sort()).toEqual(['approval.denied', 'approval.requested']);
  });

  it('N of M: two different approvers are needed; the same approver twice is refused', async () => {
    const id = (await w.ask('wipe-db', 'db://sessions')).body.approval_id as string;
    expect((await w.vote(w.keys.bob, id, 'approve')).body).toMatchObject({ status: 'pending', approvals: 1, required_approvals: 2 });
    expect((await w.status(id)).body).toMatchObject({ status: 'pending', approvals: 1, required_approvals: 2 });
    expect(await w.vote(w.keys.bob, id, 'approve')).toMatchObject({ status: 409, body: { detail: expect.stringMatching(/already voted/) } });
    expect((await w.vote(w.keys.carol, id, 'approve')).body).toMatchObject({ status: 'approved', approvals: 2 });
    const redeemed = await w.redeem(id, { params: { destination: 'db://sessions' } });
    expect(redeemed.status).toBe(201);
    expect((await w.admin(`/decisions/${redeemed.body.decision_id as string}`)).reasons).toEqual(['approved by admin:bob, admin:carol']);
  });

  it('a concurrent double redeem gets exactly one token', async () => {
    const id = (await w.ask('export-data', 's3://race')).body.approval_id as string;
    await w.vote(w.keys.bob, id, 'approve');
    const results = await Promise.all(Array.from({ length: 5 }, () => w.redeem(id, { params: { destination: 's3://race' } })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409]);
    const grants = await w.broker.database.db.selectFrom('grants').select('id').where('approval_id', '=', id).execute();
    expect(grants).toHaveLength(1);
  });

  it('expires a request nobody decided; history stays; nothing can be done with it', async () => {
    const id = (await w.ask('export-data', 's3://slow')).body.approval_id as string;
    w.broker.clock.advance(899);
    await expireApprovals(w.broker.deps, now());
    expect((await w.admin(`/approvals/${id}`)).status).toBe('pending');
    w.broker.clock.advance(1);
    // Earlier tests' open requests expire in the same sweep; each exactly once.
    expect((await expireApprovals(w.broker.deps, now())).processed).toBeGreaterThanOrEqual(1);
    expect((await expireApprovals(w.broker.deps, now())).processed).toBe(0);
    expect(await w.admin(`/approvals/${id}`)).toMatchObject({ status: 'expired', decision: { outcome: 'step_up' } });
    expect((await w.status(id)).body.status).toBe('expired');
    expect((await w.vote(w.keys.bob, id, 'approve')).status).toBe(409);
    expect(await w.redeem(id, { params: { destination: 's3://slow' } })).toMatchObject({ status: 409, body: { status: 'expired' } });
    await deliver();
    expect(notificationsFor(id).map((n) => n.type).sort()).toEqual(['approval.expired', 'approval.requested']);
    const listed = await w.admin('/approvals?status=expired&workload=exporter');
    expect((listed.items as Array<{ id: string }>).map((a) => a.id)).toContain(id);
  });

  it('an approval past its expiry cannot be voted on even before the sweep ran', async () => {
    const id = (await w.ask('export-data', 's3://late')).body.approval_id as string;
    w.broker.clock.advance(901);
    expect(await w.vote(w.keys.bob, id, 'approve')).toMatchObject({ status: 409, body: { status: 'expired' } });
  });
});

describe('delegated approver webhook', () => {
  it('decides within its timeout, signed with its registered secret; its answer is recorded like a person’s', async () => {
    const reg = await post(`${w.broker.url}/v1/admin/approval-webhooks`, { url: w.delegated.url }, { authorization: `Bearer ${TEST_ADMIN_KEY}` });
    const delegatedSecret = reg.body.secret as string;
    w.delegatedAnswer = { status: 200, json: { decision: 'approve', comment: 'low risk: rotation' } };
    const asked = await w.ask('rotate-key', 'kms://k1');
    expect(asked.status).toBe(202);
    expect(asked.body).toMatchObject({ status: 'approved', approvals: 1 });
    const call = w.delegated.received.at(-1)!;
    expect(verifySignature(delegatedSecret, call.headers['tessera-signature'] as string, call.body, nowS())).toBe(true);
    expect(JSON.parse(call.body)).toMatchObject({ type: 'approval.decide', approval: { task: 'rotate-key', params: { destination: 'kms://k1' } }, decision: { reasons: ['rotate-key needs an approver'] } });
    const id = asked.body.approval_id as string;
    const host = new URL(w.delegated.url).host;
    expect(await w.admin(`/approvals/${id}`)).toMatchObject({ votes: [{ approver: `webhook:${host}`, vote: 'approve', comment: 'low risk: rotation' }] });
    expect((await w.redeem(id, { params: { destination: 'kms://k1' } })).status).toBe(201);
  });

  it('a slow or broken delegated approver leaves the request pending for people', async () => {
    w.delegatedAnswer = { status: 200, json: { decision: 'approve' }, delayMs: 1_500 };
    const slow = await w.ask('rotate-key', 'kms://k2');
    expect(slow.body).toMatchObject({ status: 'pending', approvals: 0 });
    w.delegatedAnswer = { status: 200, json: { verdict: 'yes' } };
    expect((await w.ask('rotate-key', 'kms://k3')).body).toMatchObject({ status: 'pending' });
    w.delegatedAnswer = { status: 200, json: { decision: 'deny', comment: 'unknown key' } };
    expect((await w.ask('rotate-key', 'kms://k4')).body).toMatchObject({ status: 'denied' });
  });
});

describe('notification delivery', () => {
  it('retries a failing receiver with backoff, re-signing each attempt, then delivers', async () => {
    let fail = 3;
    const flaky = await startReceiver(() => (fail-- > 0 ? { status: 503 } : { status: 204 }));
    try {
      const reg = await post(`${w.broker.url}/v1/admin/approval-webhooks`, { url: flaky.url }, { authorization: `Bearer ${TEST_ADMIN_KEY}` });
      const flakySecret = reg.body.secret as string;
      await deliver(); // drain what other receivers have queued
      const id = (await w.ask('export-data', 's3://flaky')).body.approval_id as string;
      const waits: number[] = [];
      for (;;) {
        await deliver();
        const row = await w.broker.database.db.selectFrom('approval_webhook_deliveries').selectAll().where('approval_id', '=', id).where('webhook_id', '=', reg.body.id as string).executeTakeFirstOrThrow();
        if (row.status === 'delivered') {
          expect(row.attempts).toBe(4);
          break;
        }
        expect(row).toMatchObject({ status: 'pending', last_error: 'HTTP 503' });
        // Not due again before its backoff.
        expect((await deliver()).processed).toBe(0);
        const wait = (row.next_attempt_at.getTime() - now().getTime()) / 1000;
        waits.push(wait);
        w.broker.clock.advance(wait);
      }
      expect(waits).toEqual([5, 10, 20]);
      expect(flaky.received).toHaveLength(4);
      const signatures = flaky.received.map((r) => r.headers['tessera-signature']);
      expect(new Set(signatures).size).toBe(4);
      expect(flaky.received.every((r) => r.body === flaky.received[0]!.body)).toBe(true);
      const last = flaky.received.at(-1)!;
      expect(verifySignature(flakySecret, last.headers['tessera-signature'] as string, last.body, nowS())).toBe(true);
      console.log(`approval webhook retry waits (s): ${waits.join(', ')}`);
    } finally {
      await flaky.close();
    }
  });
});
