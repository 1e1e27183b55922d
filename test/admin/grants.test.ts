import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, createKey, requestDeployGrant, startAdminWorld, type AdminResponse, type AdminWorld } from './support.js';

let world: AdminWorld;
let viewer: string;
const ids: string[] = [];
const call = (path: string) => adminCall(world.broker, 'get', path, viewer);
const idsOf = (res: AdminResponse) => (res.body.items as Array<{ id: string }>).map((g) => g.id);

beforeAll(async () => {
  world = await startAdminWorld();
  viewer = (await createKey(world.broker, 'auditor', 'viewer')).key;
  for (let i = 0; i < 5; i++) {
    const g = await requestDeployGrant(world);
    expect(g.status).toBe(201);
    ids.unshift(g.body.grant_id!);
    world.broker.clock.advance(60);
  }
  const refund = await fetch(`${world.broker.url}/v1/grants`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await world.agent.assertion(world.broker.url, {}, Math.floor(world.broker.clock.now().getTime() / 1000))}` },
    body: JSON.stringify({ task: 'refund-payment', params: { amount: 5 } }),
  });
  expect(refund.status).toBe(201);
});
afterAll(() => world.stop());

describe('GET /v1/admin/grants', () => {
  it('filters by workload, task and status; active=true leaves out grants past their expiry', async () => {
    expect(idsOf(await call('/grants?workload=api-deploy'))).toEqual(ids);
    expect((await call('/grants?task=refund-payment')).body.items).toMatchObject([{ workload_id: 'agent-1', params: { amount: 5 } }]);
    expect((await call('/grants?status=active')).body.items).toHaveLength(6);
    // The first grants were issued 4-5 minutes ago with a 5-minute TTL: still "active" rows, no longer usable.
    world.broker.clock.advance(30);
    expect(idsOf(await call('/grants?workload=api-deploy&active=true'))).toEqual(ids.slice(0, 4));
    expect((await call('/grants?status=revoked')).body.items).toEqual([]);
  });

  it('pages newest first with a cursor', async () => {
    const first = await call('/grants?workload=api-deploy&limit=2');
    const second = await call(`/grants?workload=api-deploy&limit=2&cursor=${first.body.next_cursor}`);
    const third = await call(`/grants?workload=api-deploy&limit=2&cursor=${second.body.next_cursor}`);
    expect([...idsOf(first), ...idsOf(second), ...idsOf(third)]).toEqual(ids);
    expect(third.body.next_cursor).toBeNull();
  });

  it('shows one grant without any token hash; 404 for an unknown or malformed id', async () => {
    const res = await call(`/grants/${ids[0]}`);
    expect(res.body).toMatchObject({ id: ids[0], workload_id: 'api-deploy', task: 'deploy-prod', status: 'active', identity: { method: 'oidc' } });
    expect(res.text).not.toMatch(/sha256|[0-9a-f]{64}/);
    expect((await call('/grants/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await call('/grants/nope')).status).toBe(404);
    expect((await call('/grants?status=paused')).body.errors[0].field).toBe('status');
  });
});
