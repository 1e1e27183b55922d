import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, createKey, startAdminWorld, type AdminWorld } from './support.js';

let world: AdminWorld;
let operator: string;
const call = (method: string, path: string, body?: unknown) => adminCall(world.broker, method, path, operator, body);
const countTasks = async () => Number((await world.broker.database.db.selectFrom('tasks').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

beforeAll(async () => {
  world = await startAdminWorld();
  operator = (await createKey(world.broker, 'platform', 'operator')).key;
});
afterAll(() => world.stop());

describe('tasks', () => {
  it('lists, shows, creates, replaces and deletes; the registry follows at once', async () => {
    expect((await call('get', '/tasks')).body.items.map((t: { name: string }) => t.name)).toEqual(['deploy-prod', 'refund-payment']);
    expect((await call('get', '/tasks/deploy-prod')).body).toMatchObject({ name: 'deploy-prod', spec: { audience: 'https://deploy.example' } });

    const created = await call('put', '/tasks/read-logs', { scopes: ['logs:read'], audience: 'https://logs.example', workloads: ['agent-1'] });
    expect(created.status).toBe(201);
    expect(created.body.spec).toMatchObject({ name: 'read-logs', default_ttl_seconds: 300, risk: 'medium' });
    expect(world.broker.deps.registry.snapshot.tasks.has('read-logs')).toBe(true);
    const replaced = await call('put', '/tasks/read-logs', { name: 'read-logs', scopes: ['logs:read'], audience: 'https://logs.example', workloads: ['agent-*'], risk: 'low' });
    expect(replaced.status).toBe(200);
    expect((await call('get', '/tasks/read-logs')).body.spec).toMatchObject({ risk: 'low', workloads: ['agent-*'] });

    const page = await call('get', '/tasks?limit=2');
    expect(page.body.items).toHaveLength(2);
    expect((await call('get', `/tasks?limit=2&cursor=${page.body.next_cursor}`)).body).toMatchObject({ items: [{ name: 'refund-payment' }], next_cursor: null });

    expect((await call('delete', '/tasks/read-logs')).status).toBe(204);
    expect(world.broker.deps.registry.snapshot.tasks.has('read-logs')).toBe(false);
    expect((await call('delete', '/tasks/read-logs')).status).toBe(404);
    expect((await call('get', '/tasks/read-logs')).status).toBe(404);
  });

  it('filters by risk and by the workloads that may ask (exact entries and prefix* entries)', async () => {
    const names = async (q: string) => (await call('get', `/tasks?${q}`)).body.items.map((t: { name: string }) => t.name);
    expect(await names('risk=medium')).toEqual(['deploy-prod', 'refund-payment']);
    expect(await names('risk=high')).toEqual([]);
    expect(await names('workload=agent-1')).toEqual(['refund-payment']);
    expect(await names('workload=api-deploy&risk=medium')).toEqual(['deploy-prod']);
    // `agent-*` matches ids that start with the whole prefix `agent-`.
    expect(await names('workload=agent')).toEqual([]);
    expect(await names('workload=web-deploy')).toEqual([]);
    expect((await call('get', '/tasks?risk=extreme')).body.errors[0].field).toBe('risk');
  });

  it('names the bad field and writes nothing', async () => {
    const before = await countTasks();
    const cases: Array<[unknown, string]> = [
      [{ audience: 'a', workloads: ['x'] }, 'scopes'],
      [{ scopes: ['a b'], audience: 'a', workloads: ['x'] }, 'scopes.0'],
      [{ scopes: ['a'], audience: 'a', workloads: ['x'], default_ttl_seconds: 900, max_ttl_seconds: 600 }, 'default_ttl_seconds'],
      [{ scopes: ['a'], audience: 'a', workloads: ['x'], params: { id: { type: 'string', pattern: '(' } } }, 'params.id.pattern'],
      [{ name: 'other', scopes: ['a'], audience: 'a', workloads: ['x'] }, 'name'],
    ];
    for (const [body, field] of cases) {
      const res = await call('put', '/tasks/new-task', body);
      expect({ field, status: res.status }).toEqual({ field, status: 400 });
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
    expect(await countTasks()).toBe(before);
  });
});

describe('issuers', () => {
  it('creates and deletes an issuer, but not one a workload is bound to', async () => {
    const jwks = { keys: [world.agent.jwk] };
    expect((await call('put', '/issuers/spire', { kind: 'spiffe', trust_domain: 'prod.example', jwks, audiences: ['tessera'] })).status).toBe(201);
    expect((await call('get', '/issuers')).body.items.map((i: { id: string }) => i.id)).toEqual(['ci', 'spire']);
    expect((await call('get', '/issuers?kind=spiffe')).body.items.map((i: { id: string }) => i.id)).toEqual(['spire']);
    expect((await call('get', '/issuers?kind=oidc&limit=1')).body).toMatchObject({ items: [{ id: 'ci' }], next_cursor: null });
    const inUse = await call('delete', '/issuers/ci');
    expect(inUse.status).toBe(409);
    expect(inUse.body.workloads).toEqual(['api-deploy', 'web-deploy']);
    expect((await call('delete', '/issuers/spire')).status).toBe(204);
  });

  it('names the bad field', async () => {
    const res = await call('put', '/issuers/bad', { issuer: 'https://x.example', audiences: ['tessera'] });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ field: 'jwks_uri', reason: 'give exactly one of jwks_uri or jwks' }]);
    expect((await call('get', '/issuers/bad')).status).toBe(404);
  });
});
