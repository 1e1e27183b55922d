import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAuditEvents } from '../../src/audit/audit.repository.js';
import { expireApprovals } from '../../src/approvals/expire-approvals.job.js';
import { expireGrants } from '../../src/grants/expire-grants.job.js';
import { sha256Hex } from '../../src/lib/hash.js';
import { startTestBroker, post, TEST_ADMIN_KEY, type TestBroker } from '../support/broker.js';
import { agentKey, type AgentKey } from '../support/fixtures.js';

const TICKETS_KEY = 'tickets-source-key-for-tests-0123456789';
const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}` };

let broker: TestBroker;
let exporter: AgentKey;
let approver: string;
let rs: { authorization: string };

function config() {
  return {
    workloads: [{ id: 'exporter', kind: 'service', owner: 'data', public_keys: [exporter.jwk] }],
    tasks: [
      { name: 'export-data', scopes: ['data:export'], audience: 'https://crm.example', params: { destination: { type: 'string' } }, workloads: ['exporter'] },
      { name: 'read-data', scopes: ['data:read'], audience: 'https://crm.example', workloads: ['exporter'] },
    ],
    signal_types: [
      { name: 'ticket_state', description: 'change ticket of the workload', reason: 'exports follow a ticket', subject_kind: 'workload', value: { type: 'string', enum: ['open', 'closed'] }, sources: ['tickets'], max_age_seconds: 900 },
    ],
    signal_sources: [{ id: 'tickets', api_key_sha256: sha256Hex(TICKETS_KEY) }],
    policies: [
      {
        file: 'data.cedar',
        text: `@id("export-step-up") @step_up @reason("exports need an approver") permit (principal is Workload, action == Action::"export-data", resource);
@id("read") permit (principal is Workload, action == Action::"read-data", resource);`,
      },
    ],
  };
}

beforeAll(async () => {
  exporter = await agentKey('exporter');
  broker = await startTestBroker(config(), { scheduler: false });
  approver = (await post(`${broker.url}/v1/admin/keys`, { name: 'bob', role: 'approver' }, admin)).body.key as string;
  const client = (await post(`${broker.url}/v1/admin/resource-servers`, { name: 'crm', audiences: ['https://crm.example'] }, admin)).body as { client_id: string; client_secret: string };
  rs = { authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}` };
});
afterAll(() => broker.stop());

const identity = async () => ({ authorization: `Bearer ${await exporter.assertion(broker.url, {}, Math.floor(broker.clock.now().getTime() / 1000))}` });
const ask = async (task: string, params: Record<string, unknown> = {}) => post(`${broker.url}/v1/grants`, { task, params }, await identity());
const use = (grantId: string, tool: string) => post(`${broker.url}/v1/grants/${grantId}/uses`, { tool }, rs);
const revoke = (grantId: string) => post(`${broker.url}/v1/admin/grants/${grantId}/revoke`, { reason: 'incident 7' }, admin);
/** The X-Request-Id the broker gave a response: what its audit events must carry. */
const rid = (r: { headers: Headers }) => r.headers.get('x-request-id');
async function trail(grantId: string) {
  const res = await fetch(`${broker.url}/v1/admin/grants/${grantId}/trail`, { headers: admin });
  return (await res.json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}
const steps = (t: Record<string, any>) => (t.events as Array<{ action: string; outcome: string }>).map((e) => `${e.action}:${e.outcome}`); // eslint-disable-line @typescript-eslint/no-explicit-any
async function eventsOf(action: string) {
  await broker.deps.audit.flush();
  return (await listAuditEvents(broker.deps.db, { limit: 1000 })).filter((e) => e.action === action);
}

describe('one grant life as one chain', () => {
  it('step-up → approve → redeem → use → refused use (out of uses) → revoke, in order, each with its request id', async () => {
    const asked = await ask('export-data', { destination: 's3://reports' });
    expect(asked.status).toBe(202);
    const approvalId = asked.body.approval_id as string;
    const voted = await post(`${broker.url}/v1/admin/approvals/${approvalId}/approve`, { comment: 'CHG-9' }, { authorization: `Bearer ${approver}` });
    expect(voted.status).toBe(200);
    const redeemed = await post(`${broker.url}/v1/approvals/${approvalId}/redeem`, { params: { destination: 's3://reports' } }, await identity());
    expect(redeemed.status).toBe(201);
    const grantId = redeemed.body.grant_id as string;
    const used = await use(grantId, 'export');
    expect(used.body).toMatchObject({ use_count: 1, max_uses: 1, status: 'completed' });
    const refused = await use(grantId, 'export');
    expect(refused.status).toBe(409);
    // A redeemed step-up is single-use, so it has already ended: revoking it changes nothing, and only
    // the admin's request is recorded (grant.revoke, with nothing revoked), no grant.revoked.
    const late = await revoke(grantId);
    expect(late.body).toMatchObject({ changed: false, status: 'completed' });

    const t = await trail(grantId);
    expect(steps(t)).toEqual([
      'decision.recorded:step_up',
      'approval.requested:pending',
      'approval.voted:approve',
      'approval.approved:success',
      'decision.recorded:allow',
      'grant.minted:success',
      'approval.redeemed:success',
      'grant.used:success',
      'grant.completed:success',
      'grant.use_refused:refused',
      'grant.revoke:success',
    ]);
    const ids = (t.events as Array<{ request_id: string | null }>).map((e) => e.request_id);
    expect(ids).toEqual([rid(asked), rid(asked), rid(voted), rid(voted), rid(redeemed), rid(redeemed), rid(redeemed), rid(used), rid(used), rid(refused), rid(late)]);
    expect(t.events.at(-1)).toMatchObject({ actor: 'admin:bootstrap', data: { revoked: [] } });
    const seqs = (t.events as Array<{ seq: string }>).map((e) => Number(e.seq));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(t.approval).toMatchObject({ status: 'redeemed', votes: [{ approver: 'admin:bob', vote: 'approve', comment: 'CHG-9' }], step_up_decision: { outcome: 'step_up', reasons: ['exports need an approver'] } });
    expect(t.integrity).toEqual({ decision: 'intact', step_up_decision: 'intact', grant: 'intact' });
    expect(t.ended).toMatchObject({ status: 'completed', reason: 'uses exhausted' });
  });

  it('a grant revoked mid-life: uses, the revocation and a refused use after it, each with its request id', async () => {
    const minted = await ask('read-data');
    expect(minted.status).toBe(201);
    const grantId = minted.body.grant_id as string;
    const first = await use(grantId, 'query');
    const second = await use(grantId, 'query');
    const revoked = await revoke(grantId);
    expect(revoked.body).toMatchObject({ changed: true, status: 'revoked' });
    const late = await use(grantId, 'query');
    expect(late.status).toBe(409);

    const t = await trail(grantId);
    // The grant's end (grant.revoked), then the admin request that ended it (grant.revoke).
    expect(steps(t)).toEqual(['decision.recorded:allow', 'grant.minted:success', 'grant.used:success', 'grant.used:success', 'grant.revoked:success', 'grant.revoke:success', 'grant.use_refused:refused']);
    expect(t.events.map((e: { request_id: string }) => e.request_id)).toEqual([rid(minted), rid(minted), rid(first), rid(second), rid(revoked), rid(revoked), rid(late)]);
    expect(t.events[4]).toMatchObject({ actor: 'admin:bootstrap', data: { reason: 'incident 7' } });
    expect(t.uses).toHaveLength(2);
  });
});

describe('event kinds', () => {
  it('grant.expired and approval.expired come from the jobs, as the system, at the injected time', async () => {
    const minted = await ask('read-data');
    const pending = await ask('export-data', { destination: 's3://later' });
    expect([minted.status, pending.status]).toEqual([201, 202]);
    broker.clock.advance(3_600);
    expect((await expireGrants(broker.deps, broker.clock.now())).processed).toBeGreaterThanOrEqual(1);
    expect((await expireApprovals(broker.deps, broker.clock.now())).processed).toBe(1);
    expect((await eventsOf('grant.expired')).find((e) => e.target_id === minted.body.grant_id)).toMatchObject({ actor: 'system:expiry', request_id: null, data: { reason: 'expired' } });
    expect(await eventsOf('approval.expired')).toMatchObject([{ actor: 'system:expiry', target_id: pending.body.approval_id, data: { status: 'expired' } }]);
  });

  it('signals.ingested names the source and carries the request id', async () => {
    const observed = broker.clock.now().toISOString();
    const pushed = await post(`${broker.url}/v1/signals`, { signals: [{ type: 'ticket_state', subject: 'exporter', value: 'open', observed_at: observed }] }, { authorization: `Bearer ${TICKETS_KEY}` });
    expect(pushed.status).toBe(202);
    expect(await eventsOf('signals.ingested')).toMatchObject([
      { actor: 'source:tickets', request_id: rid(pushed), data: { count: 1, signals: [{ type: 'ticket_state', subject: 'exporter', value: 'open', observed_at: observed }] } },
    ]);
  });

  it('config.applied names the admin and the version, and carries the request id', async () => {
    const doc = config();
    doc.tasks.push({ name: 'audit-data', scopes: ['data:audit'], audience: 'https://crm.example', workloads: ['exporter'] });
    const applied = await post(`${broker.url}/v1/admin/config`, doc, admin);
    expect(applied.status).toBe(201);
    const events = await eventsOf('config.applied');
    expect(events.at(-1)).toMatchObject({ actor: 'admin:bootstrap', target_type: 'config_version', target_id: String(applied.body.version), request_id: rid(applied), data: { tasks: 3 } });
    // The one at start-up had no request: the broker applied its own configuration.
    expect(events[0]).toMatchObject({ actor: 'system:startup', request_id: null });
  });

  it('an admin write is audited with its actor, target and request id, and without the secret it made', async () => {
    const created = await post(`${broker.url}/v1/admin/keys`, { name: 'carol', role: 'viewer' }, admin);
    expect(created.status).toBe(201);
    const [event] = (await eventsOf('admin_key.create')).filter((e) => e.target_id === created.body.id);
    expect(event).toMatchObject({ actor: 'admin:bootstrap', outcome: 'success', request_id: rid(created), data: { name: 'carol', role: 'viewer' } });
    expect(JSON.stringify(event)).not.toContain(created.body.key as string);
    const verified = await fetch(`${broker.url}/v1/admin/audit/verify`, { headers: admin });
    expect(await verified.json()).toMatchObject({ ok: true });
  });
});
