import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from './support/broker.js';
import { startFakeIssuer, type FakeIssuer } from './support/fake-issuer.js';
import { agentKey, testConfig } from './support/fixtures.js';

let broker: TestBroker;
let ci: FakeIssuer;

beforeAll(async () => {
  ci = await startFakeIssuer({ now: () => broker.clock.now() });
  broker = await startTestBroker(testConfig(ci, (await agentKey()).jwk));
});
afterAll(async () => {
  await broker.stop();
  await ci.close();
});

describe('malformed input gets a 4xx, never a 500', () => {
  it('refuses bad percent-encoding and compressed bodies, and keeps serving', async () => {
    const badPath = await fetch(`${broker.url}/v1/grants/%E0%A4%A/complete`, { method: 'POST' });
    expect(badPath.status).toBe(400);
    for (const [path, type] of [['/v1/grants', 'application/json'], ['/oauth2/token', 'application/x-www-form-urlencoded'], ['/v1/signals', 'application/json']] as const) {
      const res = await fetch(`${broker.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': type, 'content-encoding': 'gzip', authorization: 'Bearer x' },
        body: 'not gzip at all',
      });
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
    }
    expect((await fetch(`${broker.url}/healthz`)).status).toBe(200);
  });
});
