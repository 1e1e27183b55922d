import { readFile } from 'node:fs/promises';
import { importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFolder } from '../src/config/load-folder.js';
import { ManualClock } from '../src/lib/clock.js';
import { post, startTestBroker, TEST_ADMIN_KEY, type TestBroker } from './support/broker.js';
import { startFakeIssuer, type FakeIssuer } from './support/fake-issuer.js';

// The seeds' three examples, over HTTP, against a broker running config/demo as shipped; only the
// GitHub issuer is pointed at a local fake, which signs GitHub-shaped tokens.
// Monday 2026-11-23 10:00 UTC is 11:00 in Berlin: inside the demo's change window.
const MONDAY_MORNING = '2026-11-23T10:00:00Z';
const SATURDAY = '2026-11-28T10:00:00Z';
const NEXT_MONDAY = '2026-11-30T10:00:00Z';
// DEMO ONLY keys, as config/demo/signals.yaml documents them.
const ATTESTOR = 'demo-runner-attestor-key-not-for-production';
const KEY_INVENTORY = 'demo-key-inventory-key-not-for-production';
const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}` };

let broker: TestBroker;
let github: FakeIssuer;
const clock = new ManualClock(MONDAY_MORNING);
const keys: Record<string, CryptoKey> = {};

beforeAll(async () => {
  github = await startFakeIssuer({ now: () => clock.now() });
  const doc = await loadConfigFolder('config/demo');
  const issuers = doc.issuers.map((i) => (i.id === 'github-actions' ? { ...i, issuer: github.url, jwks_uri: github.jwksUri } : i));
  for (const id of ['demo-agent', 'demo-exporter']) {
    const jwk = JSON.parse(await readFile(`config/demo/keys/${id}.private.jwk.json`, 'utf8')) as JWK;
    keys[id] = (await importJWK(jwk, 'ES256')) as CryptoKey;
  }
  broker = await startTestBroker({}, { clock, scheduler: false, config: { ...doc, issuers } });
});
afterAll(async () => {
  await broker.stop();
  await github.close();
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const epoch = () => Math.floor(clock.now().getTime() / 1000);
const assertion = (id: string) =>
  new SignJWT({ jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: `${id}-1` })
    .setIssuer(id)
    .setSubject(id)
    .setAudience(broker.url)
    .setIssuedAt(epoch())
    .setExpirationTime(epoch() + 60)
    .sign(keys[id]!);
const grant = async (identity: string, task: string, params: Record<string, unknown>) => post(`${broker.url}/v1/grants`, { task, params }, bearer(identity));
const signal = (key: string, type: string, value: unknown) =>
  post(`${broker.url}/v1/signals`, { signals: [{ type, subject: 'acme-api-deploy', value, observed_at: clock.now().toISOString() }] }, bearer(key));

describe('deploy only from a trusted runner, with the current signing key, in the change window', () => {
  const deploy = async () => grant(await github.token(), 'deploy-prod', { service: 'api' });

  it('refuses until both signals vouch; allows inside the window; refuses on Saturday', async () => {
    const unknown = await deploy();
    expect(unknown.status).toBe(403);
    expect(unknown.body.reasons).toEqual(['the artifact signing key is not the current one', 'the runner is not attested as trusted']);
    expect((await signal(ATTESTOR, 'runner_trust', 'trusted')).status).toBe(202);
    expect((await deploy()).body.reasons).toEqual(['the artifact signing key is not the current one']);
    // The attestor may not speak for the key inventory.
    expect((await signal(ATTESTOR, 'signing_key_current', true)).status).toBe(400);
    expect((await signal(KEY_INVENTORY, 'signing_key_current', true)).status).toBe(202);
    const ok = await deploy();
    expect(ok.status).toBe(201);
    expect(ok.body.expires_in).toBe(600);

    // Time only moves forward here: a signal observed later stays the newest one.
    clock.set(SATURDAY);
    await signal(ATTESTOR, 'runner_trust', 'trusted');
    await signal(KEY_INVENTORY, 'signing_key_current', true);
    expect((await deploy()).body.reasons).toEqual(['the production change window is closed']);
    clock.set(NEXT_MONDAY);
  });

  it('refuses an untrusted runner and a retired signing key', async () => {
    await signal(ATTESTOR, 'runner_trust', 'trusted');
    await signal(KEY_INVENTORY, 'signing_key_current', false);
    expect((await deploy()).body.reasons).toEqual(['the artifact signing key is not the current one']);
    await signal(KEY_INVENTORY, 'signing_key_current', true);
    await signal(ATTESTOR, 'runner_trust', 'untrusted');
    expect((await deploy()).body.reasons).toEqual(['the runner is not attested as trusted']);
    await signal(ATTESTOR, 'runner_trust', 'trusted');
    expect((await deploy()).status).toBe(201);
  });
});

describe('an agent refund is capped in amount and refused on a rate spike', () => {
  const refund = async (amount: number) => grant(await assertion('demo-agent'), 'refund-payment', { order_id: 'ord-1001', amount });

  it('refunds up to 100 with a two-minute token; more is refused, and so is a burst', async () => {
    clock.advance(600);
    const ok = await refund(99.5);
    expect(ok.status).toBe(201);
    expect(ok.body.expires_in).toBe(120);
    const over = await refund(100.5);
    expect(over.status).toBe(400);
    expect(over.body.errors).toEqual([{ field: 'params.amount', reason: expect.stringMatching(/100/) }]);
    for (let i = 0; i < 10; i++) expect((await refund(5)).status).toBe(201);
    const spike = await refund(5);
    expect(spike.status).toBe(403);
    expect(spike.body.reasons).toEqual(['request rate spike: more than 10 requests in the last minute']);
    clock.advance(120);
    expect((await refund(5)).status).toBe(201);
  });
});

describe('an export needs step-up when its destination is new to the workload', () => {
  const exportTo = async (dataset: string, destination: string) => grant(await assertion('demo-exporter'), 'export-customer-data', { dataset, destination });

  it('steps up a first destination; after approval, another dataset to it exports directly', async () => {
    const first = await exportTo('orders', 's3://reports/weekly');
    expect(first.status).toBe(202);
    expect(first.body.reasons).toEqual(['first export to this destination for this workload: an approver must confirm']);
    expect((await post(`${broker.url}/v1/admin/approvals/${first.body.approval_id}/approve`, { comment: 'weekly report bucket' }, admin)).status).toBe(200);
    const redeemed = await post(`${broker.url}/v1/approvals/${first.body.approval_id}/redeem`, { params: { dataset: 'orders', destination: 's3://reports/weekly' } }, bearer(await assertion('demo-exporter')));
    expect(redeemed.status).toBe(201);

    // A known destination with another dataset: target_is_new holds, yet it is no first export there.
    const known = await exportTo('contacts', 's3://reports/weekly');
    expect(known.status).toBe(201);
    expect(known.body.expires_in).toBe(300);
    const d = (await (await fetch(`${broker.url}/v1/admin/decisions/${known.body.decision_id}`, { headers: admin })).json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(d.signals.broker).toMatchObject({ target_is_new: true, new_params: ['dataset'] });

    const elsewhere = await exportTo('orders', 's3://somewhere-else');
    expect(elsewhere.status).toBe(202);
  });
});
