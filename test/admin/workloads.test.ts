import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, createKey, requestDeployGrant, startAdminWorld, TEST_ADMIN_KEY, type AdminWorld } from './support.js';

let world: AdminWorld;
let operator: string;
const call = (method: string, path: string, body?: unknown) => adminCall(world.broker, method, path, operator, body);
const count = async (table: 'workloads' | 'config_versions') =>
  Number((await world.broker.database.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

beforeAll(async () => {
  world = await startAdminWorld();
  operator = (await createKey(world.broker, 'oncall', 'operator')).key;
  for (const [i, kind] of (['service', 'agent', 'service', 'ci', 'service'] as const).entries()) {
    const res = await call('put', `/workloads/w-${i}`, { kind, owner: i % 2 ? 'team-b' : 'team-a', public_keys: [world.agent.jwk] });
    expect(res.status).toBe(201);
  }
});
afterAll(() => world.stop());

describe('GET /v1/admin/workloads', () => {
  it('filters by status, kind and owner', async () => {
    const services = await call('get', '/workloads?kind=service&owner=team-a');
    expect(services.body.items.map((w: { id: string }) => w.id)).toEqual(['w-0', 'w-2', 'w-4']);
    const ci = await call('get', '/workloads?kind=ci');
    expect(ci.body.items.map((w: { id: string }) => w.id)).toEqual(['api-deploy', 'w-3', 'web-deploy']);
    expect((await call('get', '/workloads?status=retired')).body.items).toEqual([]);
  });

  it('pages with limit and an opaque cursor until next_cursor is null', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: Awaited<ReturnType<typeof call>> = await call('get', `/workloads?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.items.map((w: { id: string }) => w.id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(['agent-1', 'api-deploy', 'w-0', 'w-1', 'w-2', 'w-3', 'w-4', 'web-deploy']);
  });

  it('refuses bad filters, limits and cursors naming the field', async () => {
    expect((await call('get', '/workloads?status=paused')).body.errors[0].field).toBe('status');
    expect((await call('get', '/workloads?limit=0')).body.errors[0].field).toBe('limit');
    expect((await call('get', '/workloads?cursor=garbage')).body.errors[0].field).toBe('cursor');
    expect((await call('get', '/workloads?colour=red')).status).toBe(400);
  });

  it('shows one workload with its live status, and 404 for an unknown one', async () => {
    const res = await call('get', '/workloads/api-deploy');
    expect(res.body).toMatchObject({ id: 'api-deploy', kind: 'ci', owner: 'api-team', status: 'active', status_changed_by: 'system:startup' });
    expect((await call('get', '/workloads/nope')).status).toBe(404);
  });
});

describe('PUT /v1/admin/workloads/:id', () => {
  it('creates, then replaces the spec, attributing the change', async () => {
    const created = await call('put', '/workloads/svc-x', { kind: 'service', owner: 'ops', public_keys: [world.agent.jwk] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'svc-x', status: 'active', status_changed_by: 'admin:oncall' });
    const updated = await call('put', '/workloads/svc-x', { id: 'svc-x', kind: 'agent', owner: 'ops-2', public_keys: [world.agent.jwk] });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ kind: 'agent', owner: 'ops-2' });
    expect(world.broker.deps.registry.snapshot.workloads.get('svc-x')?.spec.owner).toBe('ops-2');
  });

  it('takes ids with slashes and colons, percent-encoded in the path', async () => {
    const path = `/workloads/${encodeURIComponent('team/svc:1')}`;
    expect((await call('put', path, { kind: 'service', owner: 'team', public_keys: [world.agent.jwk] })).status).toBe(201);
    expect((await call('get', path)).body).toMatchObject({ id: 'team/svc:1' });
    expect((await call('post', `${path}/suspend`, { reason: 'test' })).body).toMatchObject({ id: 'team/svc:1', status: 'suspended' });
    expect((await call('post', `${path}/activate`, { reason: 'test' })).status).toBe(200);
  });

  it('names the bad field and writes nothing', async () => {
    const before = [await count('workloads'), await count('config_versions')];
    const cases: Array<[unknown, string]> = [
      [{ kind: 'robot', owner: 'x', public_keys: [world.agent.jwk] }, 'kind'],
      [{ kind: 'ci', owner: 'x' }, 'bindings'],
      [{ kind: 'ci', owner: 'x', bindings: [{ issuer: 'nope', subject: 's' }] }, 'bindings.0.issuer'],
      [{ kind: 'ci', owner: 'x', bindings: [{ issuer: 'ci', claims: { ref: { pattern: '(' } } }] }, 'bindings.0.claims.ref.pattern'],
      [{ id: 'other', kind: 'ci', owner: 'x', public_keys: [world.agent.jwk] }, 'id'],
      [{ kind: 'ci', owner: 'x', public_keys: [world.agent.jwk], colour: 'red' }, '(body)'],
    ];
    for (const [body, field] of cases) {
      const res = await call('put', '/workloads/new-one', body);
      expect({ field, status: res.status }).toEqual({ field, status: 400 });
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
    expect((await call('put', '/workloads/new-one', '{"kind":')).body).toMatchObject({ status: 400, detail: 'The request body is not valid JSON.' });
    expect((await call('put', '/workloads/new-one', [])).body.errors[0].field).toBe('(body)');
    expect((await call('put', '/workloads/Bad Id', { kind: 'ci', owner: 'x', public_keys: [world.agent.jwk] })).body.errors[0].field).toBe('id');
    expect([await count('workloads'), await count('config_versions')]).toEqual(before);
  });

  it('refuses a status change through the spec: that is what the lifecycle verbs are for', async () => {
    const res = await call('put', '/workloads/w-1', { kind: 'agent', owner: 'team-b', status: 'suspended', public_keys: [world.agent.jwk] });
    expect(res.status).toBe(409);
    expect((await call('get', '/workloads/w-1')).body.status).toBe('active');
  });
});

describe('workload lifecycle', () => {
  it('suspend revokes the active grants in the same step, and no new grant is issued', async () => {
    const g1 = await requestDeployGrant(world);
    const g2 = await requestDeployGrant(world);
    expect([g1.status, g2.status]).toEqual([201, 201]);
    const res = await call('post', '/workloads/api-deploy/suspend', { reason: 'incident 42' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'suspended', status_reason: 'incident 42', status_changed_by: 'admin:oncall', revoked_grants: 2 });
    for (const g of [g1, g2]) {
      const grant = await call('get', `/grants/${g.body.grant_id}`);
      expect(grant.body).toMatchObject({ status: 'revoked', ended_by: 'admin:oncall', end_reason: 'incident 42' });
    }
    const refused = await requestDeployGrant(world);
    expect([401, 403]).toContain(refused.status);
    expect(await world.broker.database.db.selectFrom('grants').select('id').where('workload_id', '=', 'api-deploy').where('status', '=', 'active').execute()).toEqual([]);
  });

  it('refuses a move from the wrong status with 409, and needs a reason', async () => {
    expect((await call('post', '/workloads/api-deploy/suspend', { reason: 'again' })).status).toBe(409);
    expect((await call('post', '/workloads/api-deploy/activate', {})).body.errors[0].field).toBe('reason');
    expect((await call('post', '/workloads/nope/suspend', { reason: 'x' })).status).toBe(404);
  });

  it('activate lets the workload ask again; retire ends it; a config re-apply keeps an admin suspension', async () => {
    expect((await call('post', '/workloads/api-deploy/activate', { reason: 'incident closed' })).body).toMatchObject({ status: 'active', revoked_grants: 0 });
    expect((await requestDeployGrant(world)).status).toBe(201);
    const retired = await call('post', '/workloads/api-deploy/retire', { reason: 'replaced' });
    expect(retired.body).toMatchObject({ status: 'retired', revoked_grants: 1 });

    expect((await call('post', '/workloads/web-deploy/suspend', { reason: 'suspicious' })).status).toBe(200);
    const { testConfig } = await import('../support/fixtures.js');
    const applied = await adminCall(world.broker, 'post', '/config', TEST_ADMIN_KEY, testConfig(world.ci, world.agent.jwk));
    // The API edits above made versions of their own, so the unchanged folder applies in full again.
    expect(applied.body.changed).toBe(true);
    expect((await call('get', '/workloads/web-deploy')).body.status).toBe('suspended');
  });
});
