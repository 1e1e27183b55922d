import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/lib/hash.js';
import { adminCall, createKey, startAdminWorld, TEST_ADMIN_KEY, type AdminWorld } from './support.js';

let world: AdminWorld;
const call = (method: string, path: string, key: string, body?: unknown) => adminCall(world.broker, method, path, key, body);

beforeAll(async () => {
  world = await startAdminWorld();
});
afterAll(() => world.stop());

describe('admin keys', () => {
  it('shows a new key once; the list never shows a secret or a hash', async () => {
    const res = await call('post', '/keys', TEST_ADMIN_KEY, { name: 'ci-bot', role: 'operator', expires_in_days: 30 });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toMatchObject({ name: 'ci-bot', role: 'operator', status: 'active', created_by: 'admin:bootstrap' });
    expect(res.body.key).toMatch(/^tsk_/);
    expect(new Date(res.body.expires_at).getTime() - world.broker.clock.now().getTime()).toBe(30 * 86_400_000);
    expect((await call('get', '/workloads', res.body.key)).status).toBe(200);

    const list = await call('get', '/keys', TEST_ADMIN_KEY);
    expect(list.body.items.map((k: { name: string }) => k.name).sort()).toEqual(['bootstrap', 'ci-bot']);
    expect(list.text).not.toContain(res.body.key);
    expect(list.text).not.toContain(sha256Hex(res.body.key));
    expect(list.text).not.toMatch(/"key"|key_sha256/);
    const stored = await world.broker.database.db.selectFrom('admin_keys').selectAll().where('id', '=', res.body.id).executeTakeFirstOrThrow();
    expect(JSON.stringify(stored)).not.toContain(res.body.key);
  });

  it('validates the request and refuses a second usable key with the same name', async () => {
    const bad = await call('post', '/keys', TEST_ADMIN_KEY, { name: 'x', role: 'root', expires_in_days: 0 });
    expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['expires_in_days', 'role']);
    expect((await call('post', '/keys', TEST_ADMIN_KEY, { name: 'ci-bot', role: 'viewer' })).status).toBe(409);
  });

  it('a revoked key stops working at once; an admin cannot revoke its own key', async () => {
    const other = await createKey(world.broker, 'second-admin', 'admin');
    const victim = await createKey(world.broker, 'leaked', 'viewer');
    expect((await call('get', '/workloads', victim.key)).status).toBe(200);
    const revoked = await call('post', `/keys/${victim.id}/revoke`, other.key, { reason: 'leaked in a log' });
    expect(revoked.body).toMatchObject({ id: victim.id, status: 'revoked' });
    expect((await call('get', '/workloads', victim.key)).status).toBe(401);
    expect((await call('post', `/keys/${victim.id}/revoke`, other.key)).status).toBe(409);

    const self = await call('post', `/keys/${other.id}/revoke`, other.key, {});
    expect(self.status).toBe(409);
    expect((await call('get', '/keys', other.key)).status).toBe(200);
    expect((await call('post', '/keys/00000000-0000-4000-8000-000000000000/revoke', other.key)).status).toBe(404);
    // The name of a revoked key is free again (rotation: revoke, then re-create).
    expect((await call('post', '/keys', other.key, { name: 'leaked', role: 'viewer' })).status).toBe(201);
  });

  it('an expired key stops working when its time comes', async () => {
    const short = await createKey(world.broker, 'contractor', 'viewer', { expires_in_days: 1 });
    expect((await call('get', '/workloads', short.key)).status).toBe(200);
    world.broker.clock.advance(86_400);
    expect((await call('get', '/workloads', short.key)).status).toBe(401);
    const listed = (await call('get', '/keys', TEST_ADMIN_KEY)).body.items.find((k: { name: string }) => k.name === 'contractor');
    expect(listed.status).toBe('expired');
  });
});
