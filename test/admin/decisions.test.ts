import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, createKey, requestDeployGrant, startAdminWorld, type AdminResponse, type AdminWorld } from './support.js';

let world: AdminWorld;
let viewer: string;
const decisions: string[] = [];
const call = (path: string) => adminCall(world.broker, 'get', path, viewer);
const idsOf = (res: AdminResponse) => (res.body.items as Array<{ id: string }>).map((d) => d.id);
const cursorOf = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');

beforeAll(async () => {
  world = await startAdminWorld();
  viewer = (await createKey(world.broker, 'auditor', 'viewer')).key;
  for (let i = 0; i < 3; i++) {
    const g = await requestDeployGrant(world);
    expect(g.status).toBe(201);
    decisions.unshift(g.body.decision_id!);
    world.broker.clock.advance(1);
  }
});
afterAll(() => world.stop());

describe('GET /v1/admin/decisions', () => {
  it('pages newest first with the shared cursor', async () => {
    const first = await call('/decisions?workload=api-deploy&outcome=allow&limit=2');
    expect(idsOf(first)).toEqual(decisions.slice(0, 2));
    const second = await call(`/decisions?workload=api-deploy&outcome=allow&limit=2&cursor=${first.body.next_cursor}`);
    expect(second.status).toBe(200);
    expect(idsOf(second)).toEqual(decisions.slice(2));
    expect(second.body.next_cursor).toBeNull();
  });

  it('refuses a forged cursor with a 400 naming it, never a 500', async () => {
    for (const cursor of [
      cursorOf({ created_at: new Date().toISOString(), id: 'not-a-uuid' }),
      cursorOf({ created_at: 'yesterday', id: decisions[0] }),
      Buffer.from(`${new Date().toISOString()}|x`).toString('base64url'),
      '%%%',
    ]) {
      const res = await call(`/decisions?cursor=${encodeURIComponent(cursor)}`);
      expect({ cursor, status: res.status }).toEqual({ cursor, status: 400 });
      expect(res.body.errors).toEqual([{ field: 'cursor', reason: 'not a cursor this list returned' }]);
    }
    expect((await call('/decisions?outcome=maybe')).body.errors[0].field).toBe('outcome');
  });
});
