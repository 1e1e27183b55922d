import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorld, type World } from './support.js';

let w: World;
const refundTask = { name: 'refund', scopes: ['refund'], audience: 'https://pay.example', params: { amount: { type: 'number' } }, workloads: ['agent-1'] };
const spare = { name: 'spare', scopes: ['spare'], audience: 'https://spare.example', workloads: ['agent-1'] };
const policy = { file: 'refund.cedar', text: '@id("refund-small") permit (principal, action == Action::"refund", resource) when { context.params.amount.lessThanOrEqual(decimal("100.0")) };' };

beforeAll(async () => {
  w = await startWorld({ tasks: [refundTask, spare], policies: [policy] });
});
afterAll(() => w.stop());

const refund = async (amount: number) => w.grant(await w.agentAssertion(), 'refund', { amount });
const versions = async () => (await w.admin('GET', '/config/versions')).body.items as Array<Record<string, unknown>>;

describe('task edits are checked against the policies before they commit', () => {
  it('refuses a param type change a policy cannot take, naming the policy; nothing is written', async () => {
    const before = await versions();
    const res = await w.admin('PUT', '/tasks/refund', { ...refundTask, name: undefined, params: { amount: { type: 'string' } } });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ field: 'policies', reason: expect.stringMatching(/^refund\.cedar:1:\d+: policy "refund-small": /) }]);
    expect((await w.admin('GET', '/tasks/refund')).body.spec.params.amount.type).toBe('number');
    expect(await versions()).toHaveLength(before.length);
    expect((await refund(5)).status).toBe(201);
  });

  it('refuses deleting a task a policy names; deletes one no policy names', async () => {
    const res = await w.admin('DELETE', '/tasks/refund');
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.errors)).toMatch(/refund-small.*refund/);
    expect((await w.admin('GET', '/tasks/refund')).status).toBe(200);
    expect((await w.admin('DELETE', '/tasks/spare')).status).toBe(204);
    expect((await refund(500)).body.reasons).toEqual(['no policy permits this request']);
  });
});

describe('config versions carry their policy version', () => {
  it('lists it for applies and edits, and a decision shows the version, its author and time', async () => {
    const edited = await w.admin('PUT', '/tasks/refund', { ...refundTask, name: undefined, description: 'small refunds' });
    expect(edited.status).toBe(200);
    const ok = await refund(5);
    const d = await w.decision(ok.body.decision_id);
    const items = await versions();
    expect(items[0]).toMatchObject({ version: d.config_version, applied_by: 'admin:bootstrap', policy_version: d.policy_version });
    // Deleting the spare task changed the schema, so the version applied at start-up had another one.
    expect(items.at(-1)).toMatchObject({ applied_by: 'system:startup', policy_version: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(items.at(-1)!.policy_version).not.toBe(d.policy_version);
    expect(d.config).toEqual({ version: d.config_version, applied_by: 'admin:bootstrap', applied_at: items[0]!.applied_at, policy_version: d.policy_version });
  });
});

describe('restoring a stored version', () => {
  it('answers 400 naming the fields of a document that no longer validates, not 500', async () => {
    const row = await w.broker.database.db
      .insertInto('config_versions')
      .values({ content_hash: 'legacy', applied_by: 'someone', applied_at: w.clock.now(), summary: '{}', document: JSON.stringify({ issuers: [{ id: 'old' }] }) })
      .returning('id')
      .executeTakeFirstOrThrow();
    try {
      const res = await w.admin('POST', `/config/versions/${row.id}/restore`, {});
      expect(res.status).toBe(400);
      expect(res.body.errors).toContainEqual(expect.objectContaining({ field: expect.stringMatching(/^issuers\.0/) }));
    } finally {
      // Being the newest document, it would otherwise be what the next reload reads.
      await w.broker.database.db.deleteFrom('config_versions').where('id', '=', row.id).execute();
    }
  });
});

describe('the policy set fails closed', () => {
  it('a stored registry the policies do not compile against denies every request, with a decision id', async () => {
    // Written behind the admin API's back (a manual fix in the database): the reload finds the
    // policies reading a param the task no longer has.
    const db = w.broker.database.db;
    const original = (await db.selectFrom('tasks').select('spec').where('name', '=', 'refund').executeTakeFirstOrThrow()).spec as Record<string, unknown>;
    await db.updateTable('tasks').set({ spec: JSON.stringify({ ...original, params: {} }) }).where('name', '=', 'refund').execute();
    await sql`update registry_epoch set epoch = epoch + 1`.execute(db);
    await w.broker.deps.registry.refreshIfChanged();
    try {
      const res = await w.grant(await w.agentAssertion(), 'refund', {});
      expect(res.status).toBe(403);
      expect(res.body.reasons).toEqual(['the policy set is invalid']);
      const d = await w.decision(res.body.decision_id);
      expect(d).toMatchObject({ outcome: 'deny', errors: [expect.stringMatching(/refund-small.*amount/)] });
      // Broken policies do not block the kill switch.
      expect((await w.admin('POST', '/workloads/agent-1/suspend', { reason: 'incident' })).status).toBe(200);
      expect((await w.admin('POST', '/workloads/agent-1/activate', { reason: 'resolved' })).status).toBe(200);
    } finally {
      await db.updateTable('tasks').set({ spec: JSON.stringify(original) }).where('name', '=', 'refund').execute();
      await sql`update registry_epoch set epoch = epoch + 1`.execute(db);
      await w.broker.deps.registry.refreshIfChanged();
    }
    expect((await refund(5)).status).toBe(201);
  });
});

describe('the last policy file', () => {
  it('is not deleted by accident: 409 with the reason, unless forced', async () => {
    const res = await w.admin('DELETE', '/policies/refund.cedar');
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ reason: 'last_policy_file', detail: expect.stringMatching(/deny-by-default to task lists alone/) });
    expect((await refund(500)).status).toBe(403);
    expect((await w.admin('DELETE', '/policies/refund.cedar?force=true')).status).toBe(204);
    expect((await refund(500)).status).toBe(201);
  });
});
