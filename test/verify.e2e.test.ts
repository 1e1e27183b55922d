import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, requireTesseraToken, tesseraToken } from '../src/verify/index.js';
import { startTestBroker, post, type TestBroker } from './support/broker.js';
import { startFakeIssuer, type FakeIssuer } from './support/fake-issuer.js';
import { agentKey, testConfig } from './support/fixtures.js';

let broker: TestBroker;
let ci: FakeIssuer;
let service: Server;
let serviceUrl: string;

beforeAll(async () => {
  ci = await startFakeIssuer({ now: () => broker.clock.now() });
  broker = await startTestBroker(testConfig(ci, (await agentKey()).jwk));
  // A downstream deploy service that knows nothing of the broker but its URL.
  const verifier = createVerifier({ issuer: broker.url, audience: 'https://deploy.example' });
  const app = express();
  app.post('/deploy', requireTesseraToken(verifier, { scope: 'deploy:write', task: 'deploy-prod' }), (_req, res) => {
    const t = tesseraToken(res);
    res.json({ deployed: (t.authorization_details[0]!.params as Record<string, unknown>).service, by: t.sub });
  });
  app.post('/admin', requireTesseraToken(verifier, { scope: 'deploy:admin' }), (_req, res) => {
    res.json({ ok: true });
  });
  service = app.listen(0, '127.0.0.1');
  await new Promise((r) => service.once('listening', r));
  serviceUrl = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
});
afterAll(async () => {
  service.close();
  await broker.stop();
  await ci.close();
});

describe('a downstream express service using tessera/verify', () => {
  it('accepts a broker token for its task and scope, and refuses the rest', async () => {
    const minted = await post(`${broker.url}/v1/grants`, { task: 'deploy-prod', params: { service: 'worker' } }, { authorization: `Bearer ${await ci.token()}` });
    const auth = { authorization: `Bearer ${minted.body.access_token}` };
    const ok = await post(`${serviceUrl}/deploy`, {}, auth);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ deployed: 'worker', by: 'api-deploy' });

    const scope = await post(`${serviceUrl}/admin`, {}, auth);
    expect(scope.status).toBe(403);
    expect(scope.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);

    const none = await post(`${serviceUrl}/deploy`, {});
    expect(none.status).toBe(401);
    const identityToken = await post(`${serviceUrl}/deploy`, {}, { authorization: `Bearer ${await ci.token()}` });
    expect(identityToken.status).toBe(401);
    expect(JSON.stringify(identityToken.body)).not.toContain('eyJ');
  });
});
