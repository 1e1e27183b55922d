import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { post, TEST_ADMIN_KEY } from '../support/broker.js';
import { agentKey, type AgentKey } from '../support/fixtures.js';
import { createVerifier } from '../../src/verify/index.js';
import { TOKEN_EXCHANGE } from '../../src/http/oauth.routes.js';
import { startLifecycleBroker, type Lifecycle } from './support.js';

const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';

/** A task an agent may hand down to a tool: at most two steps, the amount may be lowered. */
const PAY_VENDOR = {
  name: 'pay-vendor',
  scopes: ['payments:pay', 'payments:read'],
  audience: 'https://payments.example',
  max_ttl_seconds: 900,
  params: { amount: { type: 'number', maximum: 1000 }, vendor: { type: 'string' } },
  workloads: ['agent-*'],
  delegation: { allowed: true, max_depth: 2, narrowable: ['amount'] },
};
const POLICIES = `@id("all") permit (principal, action, resource);
@id("pay-minimum") @reason("payments below 1.00 are refused")
forbid (principal, action == Action::"pay-vendor", resource) when { context.params.amount.lessThan(decimal("1.00")) };`;

let t: Lifecycle;
let tool: AgentKey;
let rs: { client_id: string; client_secret: string };
beforeAll(async () => {
  tool = await agentKey('tool-1');
  t = await startLifecycleBroker({
    configure: (c) => ({
      ...c,
      workloads: [...c.workloads, { id: 'tool-1', kind: 'agent', owner: 'ops', public_keys: [tool.jwk] }],
      tasks: [...c.tasks, PAY_VENDOR],
      policies: [{ file: 'all.cedar', text: POLICIES }],
    }),
  });
  rs = (await t.admin('/resource-servers', { name: 'payments', audiences: ['https://payments.example'] })).body as typeof rs;
});
afterAll(async () => t.close());

const url = () => t.broker.url;
const nowS = () => Math.floor(t.broker.clock.now().getTime() / 1000);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function mintPay(params: Record<string, unknown> = { amount: 500, vendor: 'acme' }, ttl = 600) {
  const res = await post(`${url()}/v1/grants`, { task: 'pay-vendor', params, ttl_seconds: ttl }, bearer(await t.agent.assertion(url(), {}, nowS())));
  expect(res.status).toBe(201);
  return { id: res.body.grant_id as string, token: res.body.access_token as string };
}

/** RFC 8693 delegation through /oauth2/token, optionally naming the tool as actor. */
async function exchange(subjectToken: string, form: Record<string, string> = {}, actor = true) {
  return post(
    `${url()}/oauth2/token`,
    {
      grant_type: TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN,
      ...(actor && { actor_token: await tool.assertion(url(), {}, nowS()), actor_token_type: JWT }),
      ...form,
    },
    {},
    true,
  );
}

const delegate = (parent: { id: string; token: string }, body: Record<string, unknown> = {}) =>
  post(`${url()}/v1/grants/${parent.id}/delegate`, body, bearer(parent.token));

const introspect = (token: string) =>
  post(`${url()}/oauth2/introspect`, { token }, { authorization: `Basic ${Buffer.from(`${rs.client_id}:${rs.client_secret}`).toString('base64')}` }, true);

const row = (id: string) => t.broker.database.db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

describe('RFC 8693 delegation', () => {
  it('exchanges a grant token and the tool identity for a narrower child with a nested act claim', async () => {
    const parent = await mintPay();
    const details = JSON.stringify([{ type: 'tessera_task', task: 'pay-vendor', params: { amount: 120, vendor: 'acme' } }]);
    const res = await exchange(parent.token, { scope: 'payments:pay', authorization_details: details, ttl_seconds: '120' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ issued_token_type: ACCESS_TOKEN, token_type: 'Bearer', scope: 'payments:pay', expires_in: 120 });
    const claims = await createVerifier({ issuer: url(), audience: 'https://payments.example', now: () => t.broker.clock.now() }).verify(res.body.access_token);
    expect(claims).toMatchObject({ sub: 'agent-1', scope: 'payments:pay', act: { sub: 'tool-1' } });
    expect(claims.authorization_details).toEqual([{ type: 'tessera_task', task: 'pay-vendor', params: { amount: 120, vendor: 'acme' } }]);
    const child = await row(res.body.grant_id);
    expect(child).toMatchObject({ parent_id: parent.id, workload_id: 'agent-1', task: 'pay-vendor', scopes: ['payments:pay'], status: 'active' });
    expect((child.identity as { actor: { workload_id: string } }).actor.workload_id).toBe('tool-1');
    // The child was decided like any request, and its decision says what it was delegated from.
    const decision = await t.broker.database.db.selectFrom('decisions').selectAll().where('id', '=', res.body.decision_id).executeTakeFirstOrThrow();
    expect(decision).toMatchObject({ outcome: 'allow', grant_id: child.id, request: { delegated_from: parent.id, actor: 'tool-1' } });
  });

  it('nests act one level per step (JSON form), and refuses a step past max_depth', async () => {
    const parent = await mintPay();
    const first = await delegate(parent, { actor_token: await tool.assertion(url(), {}, nowS()) });
    expect(first.status).toBe(201);
    expect(first.body.parent_id).toBe(parent.id);
    const child = { id: first.body.grant_id as string, token: first.body.access_token as string };
    const second = await delegate(child, { params: { amount: 50, vendor: 'acme' } });
    expect(second.status).toBe(201);
    // Without an actor token the holder itself is the actor; the earlier actor stays nested.
    expect(decodeJwt(second.body.access_token).act).toEqual({ sub: 'agent-1', act: { sub: 'tool-1' } });
    expect((await row(second.body.grant_id)).parent_id).toBe(child.id);
    const third = await delegate({ id: second.body.grant_id, token: second.body.access_token });
    expect(third.status).toBe(403);
    expect(third.body.detail).toContain('at most 2 step(s)');
  });

  it('never widens: scopes, parameters, task and expiry stay within the parent', async () => {
    const parent = await mintPay({ amount: 500, vendor: 'acme' }, 300);
    expect((await delegate(parent, { scopes: ['payments:admin'] })).body).toMatchObject({ status: 400, code: 'invalid_scope' });
    const higher = await delegate(parent, { params: { amount: 501, vendor: 'acme' } });
    expect(higher.body.errors).toEqual([{ field: 'params.amount', reason: "at most 500, the parent grant's" }]);
    const other = await delegate(parent, { params: { amount: 10, vendor: 'evil' } });
    expect(other.body.errors).toEqual([{ field: 'params.vendor', reason: 'must equal the parent grant\'s ("acme")' }]);
    expect((await delegate(parent, { params: { amount: 10 } })).status).toBe(400);
    expect((await delegate(parent, { task: 'refund-payment' })).body.errors).toEqual([{ field: 'task', reason: 'must be pay-vendor' }]);
    // A longer TTL than the parent has left is cut to the parent's expiry.
    t.broker.clock.advance(100);
    const capped = await delegate(parent, { ttl_seconds: 900 });
    expect(capped.status).toBe(201);
    expect((await row(capped.body.grant_id)).expires_at.getTime()).toBeLessThanOrEqual((await row(parent.id)).expires_at.getTime());
    expect(capped.body.expires_in).toBe(200);
  });

  it('goes through policy: a narrowed request the policy forbids is denied with its decision recorded', async () => {
    const parent = await mintPay();
    const res = await delegate(parent, { params: { amount: 0.5, vendor: 'acme' } });
    expect(res.status).toBe(403);
    expect(res.body.reasons).toEqual(['payments below 1.00 are refused']);
    const decision = await t.broker.database.db.selectFrom('decisions').select(['outcome', 'request']).where('id', '=', res.body.decision_id).executeTakeFirstOrThrow();
    expect(decision).toMatchObject({ outcome: 'deny', request: { delegated_from: parent.id } });
  });

  it('refuses a task that does not allow delegation, and tokens that are not live grants', async () => {
    const deploy = await t.mintDeploy();
    expect((await delegate(deploy)).body).toMatchObject({ status: 403, detail: 'Task deploy-prod may not be delegated.' });
    expect((await delegate({ id: deploy.id, token: 'not-a-token' })).body.code).toBe('invalid_grant');
    const pay = await mintPay();
    expect((await delegate({ id: deploy.id, token: pay.token })).body.code).toBe('invalid_grant');
    // An identity token is no subject for delegation, and an actor needs a delegated subject.
    const viaIdentity = await post(`${url()}/oauth2/token`, { grant_type: TOKEN_EXCHANGE, subject_token: await t.ci.token(), subject_token_type: JWT, task: 'deploy-prod', actor_token: 'x', actor_token_type: JWT }, {}, true);
    expect(viaIdentity.body.error).toBe('invalid_request');
  });

  it.each([
    ['revoked', async (g: { id: string; token: string }) => void (await t.admin(`/grants/${g.id}/revoke`, { reason: 'stop' }))],
    ['completed', async (g: { id: string; token: string }) => void (await post(`${url()}/v1/grants/${g.id}/complete`, {}, bearer(g.token)))],
    ['expired', async () => t.broker.clock.advance(601)],
  ])('a %s parent cannot delegate', async (_state, end) => {
    const parent = await mintPay();
    await end(parent);
    const res = await exchange(parent.token, {}, false);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect((await delegate(parent)).body.code).toBe('invalid_grant');
  });
});

describe('a delegation tree ends with its root', () => {
  async function tree() {
    const root = await mintPay();
    const child = (await delegate(root, { actor_token: await tool.assertion(url(), {}, nowS()) })).body;
    const grandchild = (await delegate({ id: child.grant_id, token: child.access_token })).body;
    return { root, child: { id: child.grant_id as string, token: child.access_token as string }, grandchild: { id: grandchild.grant_id as string, token: grandchild.access_token as string } };
  }

  it('revoking the parent revokes children and grandchildren: introspection inactive, one event each, all in the trail', async () => {
    const { root, child, grandchild } = await tree();
    expect((await introspect(grandchild.token)).body.active).toBe(true);
    const res = await t.admin(`/grants/${root.id}/revoke`, { reason: 'agent compromised' });
    expect(res.body.revoked.sort()).toEqual([root.id, child.id, grandchild.id].sort());
    for (const g of [root, child, grandchild]) {
      expect((await introspect(g.token)).body).toEqual({ active: false });
      expect(await t.eventsFor(g.id)).toBe(1);
    }
    expect(await row(grandchild.id)).toMatchObject({ status: 'revoked', end_reason: 'parent grant ended: agent compromised' });
    const trail = await fetch(`${url()}/v1/admin/grants/${root.id}/trail`, { headers: bearer(TEST_ADMIN_KEY) }).then((r) => r.json() as Promise<{ children: Array<{ id: string; parent_id: string; status: string }> }>);
    expect(trail.children.map((c) => [c.id, c.parent_id, c.status])).toEqual([
      [child.id, root.id, 'revoked'],
      [grandchild.id, child.id, 'revoked'],
    ]);
  });

  it('a revocation racing delegations leaves no active child under the revoked parent', async () => {
    const root = await mintPay();
    const results = await Promise.all([
      ...Array.from({ length: 8 }, () => delegate(root)),
      t.admin(`/grants/${root.id}/revoke`, { reason: 'race' }),
      ...Array.from({ length: 8 }, () => delegate(root)),
    ]);
    const minted = results.filter((r) => r.status === 201).length;
    const children = await t.broker.database.db.selectFrom('grants').select(['id', 'status']).where('parent_id', '=', root.id).execute();
    expect(children).toHaveLength(minted);
    expect(children.filter((c) => c.status !== 'revoked')).toEqual([]);
    for (const c of children) expect(await t.eventsFor(c.id)).toBe(1);
  });

  it('completing the parent completes its children: the task is done', async () => {
    const { root, child, grandchild } = await tree();
    const done = await post(`${url()}/v1/grants/${root.id}/complete`, {}, bearer(root.token));
    expect(done.body.status).toBe('completed');
    for (const g of [child, grandchild]) {
      expect(await row(g.id)).toMatchObject({ status: 'completed', ended_by: 'workload:agent-1', end_reason: 'parent grant ended: task completed' });
      expect((await introspect(g.token)).body).toEqual({ active: false });
      expect(await t.eventsFor(g.id)).toBe(1);
    }
    // Completing a child alone leaves its parent be.
    const other = await tree();
    await post(`${url()}/v1/grants/${other.child.id}/complete`, {}, bearer(other.child.token));
    expect((await row(other.root.id)).status).toBe('active');
    expect((await row(other.grandchild.id)).status).toBe('completed');
  });
});

describe('the request-rate count', () => {
  it('counts every decided request of the workload once: a mint, a delegation in either form, a policy denial, a gate denial', async () => {
    const counted = () => t.broker.deps.requests.ownSince('agent-1', new Date(0));
    const parent = await mintPay();
    const ask = async (task: string, params: Record<string, unknown>) => (await post(`${url()}/v1/grants`, { task, params }, bearer(await t.agent.assertion(url(), {}, nowS())))).status;
    const steps: Array<[string, () => Promise<number>, number]> = [
      ['a mint', () => ask('pay-vendor', { amount: 500, vendor: 'acme' }), 201],
      ['a delegation (JSON)', async () => (await delegate(parent, { params: { amount: 50, vendor: 'acme' } })).status, 201],
      ['a delegation (RFC 8693)', async () => (await exchange(parent.token, { scope: 'payments:pay' })).status, 200],
      ['a denial by policy', () => ask('pay-vendor', { amount: 0.5, vendor: 'acme' }), 403],
      ['a denial before policy (not on the task\'s list)', () => ask('deploy-prod', { service: 'api' }), 403],
    ];
    for (const [what, send, status] of steps) {
      const before = counted();
      expect(await send(), what).toBe(status);
      expect(counted() - before, what).toBe(1);
    }
    // A request refused before it is decided (a bad body) is not one the workload made of a task.
    const before = counted();
    expect(await ask('pay-vendor', { amount: 'lots' })).toBe(400);
    expect(counted()).toBe(before);
  });
});
