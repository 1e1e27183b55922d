import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_FAILURE_WINDOW_MS } from '../../src/audit/auth-failures.js';
import { listAuditEvents } from '../../src/audit/audit.repository.js';
import { startTestBroker, post, type TestBroker } from '../support/broker.js';
import { startFakeIssuer, type FakeIssuer } from '../support/fake-issuer.js';
import { agentKey, testConfig } from '../support/fixtures.js';

let broker: TestBroker;
let ci: FakeIssuer;
/** Concurrent requests at a time: a flood, within what two shared cores serve without timeouts. */
const PARALLEL = 25;

beforeAll(async () => {
  ci = await startFakeIssuer({ now: () => broker.clock.now() });
  broker = await startTestBroker(testConfig(ci, (await agentKey()).jwk), { scheduler: false });
});
afterAll(async () => {
  await broker.stop();
  await ci.close();
});

async function flood(n: number, send: () => Promise<{ status: number }>): Promise<void> {
  for (let i = 0; i < n; i += PARALLEL) {
    const statuses = await Promise.all(Array.from({ length: Math.min(PARALLEL, n - i) }, send));
    expect(new Set(statuses.map((r) => r.status))).toEqual(new Set([401]));
  }
}

const failures = async () => (await listAuditEvents(broker.deps.db, { limit: 1000 })).filter((e) => e.action === 'auth.failed');

describe('authentication failures, summarised', () => {
  it('1,000 refused requests become a bounded number of events whose counts sum to 1,000', async () => {
    const badIdentity = await ci.token({ aud: 'someone-else' });
    const bad = () => post(`${broker.url}/v1/grants`, { task: 'deploy-prod' }, { authorization: `Bearer ${badIdentity}` });
    const first = await bad();

    // The first of its window is written at once, with its request id, so an alert need not wait.
    await broker.deps.audit.flush();
    expect(await failures()).toMatchObject([{ request_id: first.body.request_id, data: { path: '/v1/grants', count: 1, first: true, client: expect.any(String) } }]);

    await flood(599, bad);
    await flood(400, () => post(`${broker.url}/v1/admin/grants/${crypto.randomUUID()}/revoke`, { reason: 'x' }, { authorization: 'Bearer tsk_not-a-key' }));
    await broker.deps.audit.flush();
    // Still inside the window: only the two first occurrences are on the chain.
    expect((await failures()).map((e) => e.data.count)).toEqual([1, 1]);

    broker.clock.advance(AUTH_FAILURE_WINDOW_MS / 1000);
    await broker.deps.audit.flush();
    const events = await failures();
    expect(events).toHaveLength(4);
    expect(events.reduce((sum, e) => sum + Number(e.data.count), 0)).toBe(1_000);
    // One key per route shape, failed check and address: ids in the path do not make new keys.
    expect(events.filter((e) => e.data.summary)).toMatchObject([
      { request_id: null, data: { path: '/v1/grants', count: 599 } },
      { request_id: null, data: { path: '/v1/admin/grants/:id/revoke', count: 399, check: 'unknown, revoked or expired admin key' } },
    ]);
  });

  it('a new window starts with its own first event, and shutdown writes the open window\'s count', async () => {
    const before = (await failures()).length;
    const bad = () => fetch(`${broker.url}/v1/admin/audit/verify`, { headers: { authorization: 'Bearer tsk_still-not-a-key' } });
    await flood(30, bad);
    await broker.deps.audit.stop();
    const events = (await failures()).slice(before);
    expect(events.map((e) => [e.data.first ?? false, e.data.summary ?? false, e.data.count])).toEqual([
      [true, false, 1],
      [false, true, 29],
    ]);
  });
});
