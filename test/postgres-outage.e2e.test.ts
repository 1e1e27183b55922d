import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../src/db/embedded.js';
import { startTestBroker, post, type TestBroker } from './support/broker.js';
import { startFakeIssuer, type FakeIssuer } from './support/fake-issuer.js';
import { agentKey, testConfig } from './support/fixtures.js';
import { sql } from 'kysely';
import { createDatabase } from '../src/db/database.js';

// This file runs its own Postgres so that stopping it does not disturb the other test files.
let dir: string;
let pg: EmbeddedPostgresHandle;
let broker: TestBroker;
let ci: FakeIssuer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tessera-outage-'));
  pg = await startEmbeddedPostgres({ dir, persistent: true });
  ci = await startFakeIssuer({ now: () => broker.clock.now() });
  // As in production: the broker on its restricted role, migrations as the owner. (On the superuser's
  // URL the tables would be the superuser's, and the restart below would adopt them for the owner
  // while the broker holds locks on them: a deadlock, not the outage this test is about.)
  const { db } = createDatabase({ url: pg.ownerUrl });
  broker = await startTestBroker(testConfig(ci, (await agentKey()).jwk), {
    database: { url: pg.brokerUrl, ownerUrl: pg.ownerUrl, db, drop: async () => {} },
  });
});
afterAll(async () => {
  await broker?.stop();
  await ci?.close();
  await pg?.stop();
  await rm(dir, { recursive: true, force: true });
});

const mint = async () =>
  post(`${broker.url}/v1/grants`, { task: 'deploy-prod', params: { service: 'api' } }, { authorization: `Bearer ${await ci.token()}` });

describe('Postgres outage', () => {
  it('answers 503 without a token while Postgres is down, and recovers without a restart', async () => {
    expect((await mint()).status).toBe(201);

    // A connection checked out between two queries when Postgres goes away gets its shutdown notice as
    // an 'error' event; unhandled, that would kill the broker process.
    let release = () => {};
    const held = broker.deps.db.connection().execute(async (conn) => {
      await sql`select 1`.execute(conn);
      await new Promise<void>((r) => (release = r));
      await sql`select 1`.execute(conn).catch(() => {});
    });
    await new Promise((r) => setTimeout(r, 50));
    await pg.stop();
    await new Promise((r) => setTimeout(r, 200));
    release();
    await held.catch(() => {});
    const started = Date.now();
    const down = await mint();
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    expect(down.body.access_token).toBeUndefined();
    expect(down.body.code).toBe('temporarily_unavailable');
    expect((await fetch(`${broker.url}/readyz`)).status).toBe(503);

    pg = await startEmbeddedPostgres({ dir, persistent: true });
    let recovered = await mint();
    for (let i = 0; i < 20 && recovered.status !== 201; i++) {
      await new Promise((r) => setTimeout(r, 250));
      recovered = await mint();
    }
    expect(recovered.status).toBe(201);
    expect((await fetch(`${broker.url}/readyz`)).status).toBe(200);
    // Every token handed out has its committed row.
    const rows = await broker.deps.db.selectFrom('grants').select('id').execute();
    expect(rows.map((r) => r.id)).toContain(recovered.body.grant_id);
  });
});
