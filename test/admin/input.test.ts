import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, startAdminWorld, TEST_ADMIN_KEY, type AdminWorld } from './support.js';

let world: AdminWorld;
const call = (method: string, path: string, body?: unknown) => adminCall(world.broker, method, path, TEST_ADMIN_KEY, body);

beforeAll(async () => {
  world = await startAdminWorld();
});
afterAll(() => world.stop());

describe('numbers past what Postgres holds are bad input, not a 500', () => {
  it('audit sequence numbers and configuration versions', async () => {
    const huge = '9'.repeat(30);
    expect(await call('get', `/audit/events?after_seq=${huge}`)).toMatchObject({ status: 400, body: { errors: [{ field: 'after_seq' }] } });
    expect((await call('post', `/config/versions/${huge}/restore`)).status).toBe(404);
    expect((await call('get', '/audit/events?after_seq=1')).status).toBe(200);
  });
});

describe('admin keys hold a person', () => {
  it('is given at creation or defaults to the name; a bad one names the field', async () => {
    expect((await call('post', '/keys', { name: 'alice-laptop', role: 'approver', person: 'alice@example.com' })).body).toMatchObject({ name: 'alice-laptop', person: 'alice@example.com' });
    expect((await call('post', '/keys', { name: 'bob', role: 'approver' })).body).toMatchObject({ person: 'bob' });
    expect((await call('post', '/keys', { name: 'x', role: 'viewer', person: ' ' })).body.errors).toEqual([{ field: 'person', reason: expect.any(String) }]);
  });
});
