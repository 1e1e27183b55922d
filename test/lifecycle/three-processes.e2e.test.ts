import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnBroker, type BrokerProcess } from '../../scripts/lib/broker-process.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startReceiver } from './support.js';

// Three real broker processes (node, tsx, src/main.ts, the scheduler on) on one Postgres, with
// node-cron firing each job in all three at the same second: the contention the jobs are built for.
const GRANTS = 10_000;
const EXPIRE_IN_MS = 3_000;
const WAIT_MS = 90_000;

let database: TestDatabase;
let configDir: string;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const brokers: BrokerProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  configDir = await mkdtemp(path.join(os.tmpdir(), 'tessera-three-'));
  receiver = await startReceiver();
  await database.db
    .insertInto('webhook_subscriptions')
    .values({ id: randomUUID(), url: receiver.url, audience: 'siem', created_by: 'test', created_at: new Date() })
    .execute();
  const kek = randomBytes(32).toString('base64url');
  // One first, so the signing key is made once; the other two load it.
  brokers.push(await spawnBroker({ databaseUrl: database.url, ownerDatabaseUrl: database.ownerUrl, configDir, kek }));
  brokers.push(...(await Promise.all([1, 2].map(() => spawnBroker({ databaseUrl: database.url, ownerDatabaseUrl: database.ownerUrl, configDir, kek })))));
}, 120_000);
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.stop()));
  await receiver.close();
  await database.drop();
  await rm(configDir, { recursive: true, force: true });
});

const count = async (q: ReturnType<typeof sql<{ n: string }>>) => Number((await q.execute(database.db)).rows[0]!.n);

async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; broker errors: ${brokers.flatMap((b) => b.errorLines()).join('\n')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A counter's value in one broker's /metrics, summed over the label sets that match. */
async function metric(broker: BrokerProcess, name: string, labels: RegExp): Promise<number> {
  const text = await (await fetch(`${broker.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && labels.test(l))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

describe('three broker processes, their schedulers on', () => {
  it(`expire ${GRANTS} grants that expire together: each once, one audit event and one delivered webhook each`, { timeout: 240_000 }, async () => {
    const expiresAt = new Date(Date.now() + EXPIRE_IN_MS);
    await sql`
      insert into grants (id, workload_id, task, params, scopes, audience, issued_at, expires_at, status, kid, token_sha256, identity, status_idx)
      select gen_random_uuid(), 'w' || (i % 50), 'deploy-prod', '{}', '{deploy:write}', 'https://deploy.example',
        ${new Date(expiresAt.getTime() - 300_000)}, ${expiresAt}, 'active', 'k1', md5(i::text), '{}', nextval('grant_status_idx_seq')
      from generate_series(1, ${GRANTS}) as i`.execute(database.db);

    await until('the grants to expire', async () => (await count(sql`select count(*) as n from grants where status = 'active'`)) === 0);
    await until('the deliveries', async () => (await count(sql`select count(*) as n from webhook_deliveries where status = 'delivered'`)) === GRANTS);
    await until('the audit events to be sealed', async () => (await count(sql`select count(*) as n from audit_events where action = 'grant.expired'`)) === GRANTS);

    expect(await count(sql`select count(*) as n from grants where status = 'expired' and ended_by = 'system:expiry'`)).toBe(GRANTS);
    expect(await count(sql`select count(*) as n from security_events`)).toBe(GRANTS);
    expect(await count(sql`select count(distinct grant_id) as n from security_events`)).toBe(GRANTS);
    expect(await count(sql`select count(*) as n from webhook_deliveries`)).toBe(GRANTS);
    expect(await count(sql`select count(*) as n from audit_pending`)).toBe(0);

    // Each process counted what it ended and sent; together exactly once each.
    const ended = await Promise.all(brokers.map((b) => metric(b, 'tessera_grants_ended_total', /status="expired"/)));
    const sent = await Promise.all(brokers.map((b) => metric(b, 'tessera_webhook_delivery_attempts_total', /outcome="delivered"/)));
    console.log(`three processes: expired ${ended.join(' + ')}, delivered ${sent.join(' + ')}`);
    expect(ended.reduce((a, b) => a + b, 0)).toBe(GRANTS);
    expect(sent.reduce((a, b) => a + b, 0)).toBe(GRANTS);

    // The receiver got each grant's CAEP event once.
    await new Promise((r) => setTimeout(r, 6_000)); // one more delivery tick in every process: nothing more is sent
    expect(receiver.received).toHaveLength(GRANTS);
    const jtis = new Set(receiver.received.map((body) => String(decodeJwt(body).jti)));
    expect(jtis.size).toBe(GRANTS);
    const eventIds = (await database.db.selectFrom('security_events').select('id').execute()).map((e) => String(e.id));
    expect([...jtis].sort()).toEqual(eventIds.sort());
  });
});
