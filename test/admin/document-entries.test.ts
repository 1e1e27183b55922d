import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, createKey, startAdminWorld, type AdminResponse, type AdminWorld } from './support.js';

let world: AdminWorld;
let operator: string;
const call = (method: string, path: string, body?: unknown) => adminCall(world.broker, method, path, operator, body);
const namesOf = (res: AdminResponse, key = 'name') => (res.body.items as Array<Record<string, string>>).map((e) => e[key]);
const signalType = (sources: string[], subject_kind = 'workload') => ({ description: 'd', reason: 'r', subject_kind, value: { type: 'boolean' }, sources, max_age_seconds: 60 });

beforeAll(async () => {
  world = await startAdminWorld();
  operator = (await createKey(world.broker, 'platform', 'operator')).key;
  for (const id of ['edr', 'attestor', 'ticketing']) expect((await call('put', `/signal-sources/${id}`, { api_key_sha256: 'ab'.repeat(32) })).status).toBe(201);
});
afterAll(() => world.stop());

describe('signal types, sources and policies', () => {
  it('concurrent edits of different entries all survive (each reads what it replaces under the registry lock)', async () => {
    // Edits of every kind at once: two signal types, a policy, and a task (a registry table, not the document).
    const results = await Promise.all([
      call('put', '/signal-types/edr_verdict', signalType(['edr'])),
      call('put', '/signal-types/runner_trust', signalType(['attestor'])),
      call('put', '/policies/base.cedar', { text: '@id("base") permit (principal, action == Action::"deploy-prod", resource);' }),
      call('put', '/tasks/read-logs', { scopes: ['logs:read'], audience: 'https://logs.example', workloads: ['agent-1'] }),
    ]);
    expect(results.map((r) => r.status)).toEqual([201, 201, 201, 201]);
    expect(namesOf(await call('get', '/signal-types'))).toEqual(['edr_verdict', 'runner_trust']);
    expect(namesOf(await call('get', '/policies'), 'file')).toEqual(['base.cedar']);
    expect((await call('get', '/tasks/read-logs')).status).toBe(200);
    const snap = world.broker.deps.registry.snapshot;
    expect([...snap.signalTypes.keys()].sort()).toEqual(['edr_verdict', 'runner_trust']);
    expect(snap.tasks.has('read-logs')).toBe(true);
  });

  it('a signal-type edit keeps a task another admin just changed through its own API', async () => {
    expect((await call('put', '/tasks/read-logs', { scopes: ['logs:read'], audience: 'https://logs.example', workloads: ['agent-1'], risk: 'low' })).status).toBe(200);
    expect((await call('put', '/signal-types/ticket_open', signalType(['ticketing']))).status).toBe(201);
    expect((await call('get', '/tasks/read-logs')).body.spec.risk).toBe('low');
  });

  it('lists page with a cursor and filter; a bad filter names the field', async () => {
    const first = await call('get', '/signal-types?limit=2');
    expect(namesOf(first)).toEqual(['edr_verdict', 'runner_trust']);
    const second = await call('get', `/signal-types?limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body).toMatchObject({ items: [{ name: 'ticket_open' }], next_cursor: null });
    expect(namesOf(await call('get', '/signal-types?source=attestor'))).toEqual(['runner_trust']);
    expect(namesOf(await call('get', '/signal-types?subject_kind=host'))).toEqual([]);
    expect(namesOf(await call('get', '/signal-sources?credential=api_key&limit=1'), 'id')).toEqual(['attestor']);
    expect(namesOf(await call('get', '/signal-sources?credential=public_keys'), 'id')).toEqual([]);
    expect(namesOf(await call('get', '/policies?contains=deploy-prod'), 'file')).toEqual(['base.cedar']);
    expect(namesOf(await call('get', '/policies?contains=refund'), 'file')).toEqual([]);
    const bad = await call('get', '/signal-types?subject_kind=planet');
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('subject_kind');
    expect((await call('get', '/policies?cursor=bm9wZQ')).body.errors).toEqual([{ field: 'cursor', reason: 'not a cursor this list returned' }]);
  });
});
