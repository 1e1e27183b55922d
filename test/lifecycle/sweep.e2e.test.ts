import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { createDatabase, type Database } from '../../src/db/database.js';
import { expireGrants } from '../../src/grants/expire-grants.job.js';
import { flushPendingAudit } from '../../src/audit/audit-outbox.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ManualClock } from '../../src/lib/clock.js';
import { deliverWebhooks, backoffSeconds, MAX_ATTEMPTS } from '../../src/events/deliver-webhooks.job.js';
import { KeyStore } from '../../src/keys/keystore.js';
import { Kek } from '../../src/keys/kek.js';
import { CAEP_SESSION_REVOKED } from '../../src/grants/grant-events.js';

const GRANTS = 10_000;
const clock = new ManualClock('2026-11-22T12:00:02Z');
const exp = new Date('2026-11-22T12:00:00Z');
const ISSUER = 'https://broker.test';
const AUDIENCE = 'siem';
let database: TestDatabase;
let pools: Database[];

/** What the SIEM receiver got: one entry per POST, answered 202 at once. */
interface Received {
  method: string | undefined;
  path: string | undefined;
  contentType: string | undefined;
  body: string;
}
const received: Received[] = [];
let receiver: http.Server | undefined;
let receiverUrl: string;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method, path: req.url, contentType: req.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = 202;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/siem`;
  database = await createTestDatabase();
  pools = [1, 2, 3].map(() => createDatabase({ url: database.url, maxConnections: 4 }).db);
  await database.db
    .insertInto('webhook_subscriptions')
    .values({ id: randomUUID(), url: receiverUrl, audience: AUDIENCE, created_by: 'test', created_at: exp })
    .execute();
});
afterAll(async () => {
  if (receiver) {
    receiver.closeAllConnections();
    await new Promise<void>((resolve) => receiver!.close(() => resolve()));
  }
  await Promise.all((pools ?? []).map((p) => p.destroy()));
  await database?.drop();
});

async function insertExpiringGrants(n: number): Promise<void> {
  await sql`
    insert into grants (id, workload_id, task, params, scopes, audience, issued_at, expires_at, status, kid, token_sha256, identity, status_idx)
    select gen_random_uuid(), 'w' || (i % 50), 'deploy-prod', '{}', '{deploy:write}', 'https://deploy.example',
      ${new Date(exp.getTime() - 300_000)}, ${exp}, 'active', 'k1', md5(i::text), '{}', nextval('grant_status_idx_seq')
    from generate_series(1, ${n}) as i`.execute(database.db);
}

const count = async (q: ReturnType<typeof sql<{ n: string }>>) => Number((await q.execute(database.db)).rows[0]!.n);

describe('three broker processes sweeping one Postgres', () => {
  it(`expire ${GRANTS} grants that expire together: each once, one event and one webhook delivery each`, async () => {
    await insertExpiringGrants(GRANTS);
    const at = new Date(exp.getTime() + 2_000);
    const started = performance.now();
    const results = await Promise.all(pools.map((db) => expireGrants({ db, clock }, at)));
    const ms = performance.now() - started;
    const perProcess = results.map((r) => r.processed);
    console.log(`swept ${GRANTS} grants with 3 pools in ${ms.toFixed(0)} ms; per process: ${perProcess.join(', ')}`);

    expect(perProcess.reduce((a, b) => a + b, 0)).toBe(GRANTS);
    expect(await count(sql`select count(*) as n from grants where status = 'expired' and ended_by = 'system:expiry'`)).toBe(GRANTS);
    expect(await count(sql`select count(*) as n from grants where status = 'active'`)).toBe(0);
    expect(await count(sql`select count(distinct grant_id) as n from security_events`)).toBe(GRANTS);
    expect(await count(sql`select count(*) as n from security_events`)).toBe(GRANTS);
    expect(await count(sql`select count(*) as n from webhook_deliveries`)).toBe(GRANTS);
    expect(await count(sql`select count(*) as n from security_events e join grants g on g.id = e.grant_id where g.status <> 'expired'`)).toBe(0);
    // One audit event per grant, once the sealer has chained what the sweeps staged.
    await flushPendingAudit(database.db, at);
    expect(await count(sql`select count(*) as n from audit_pending`)).toBe(0);
    expect(await count(sql`select count(*) as n from audit_events where action = 'grant.expired'`)).toBe(GRANTS);
    expect(await count(sql`select count(distinct target_id) as n from audit_events where action = 'grant.expired' and actor = 'system:expiry'`)).toBe(GRANTS);
    // A second round finds nothing left to do.
    expect((await Promise.all(pools.map((db) => expireGrants({ db, clock }, at)))).map((r) => r.processed)).toEqual([0, 0, 0]);
  });

  // Reuses the state the sweep above left: 10,000 expired grants, each with one pending delivery.
  it(`deliver the ${GRANTS} webhook events from the three processes: one SET per grant, each sent once`, async () => {
    expect(await count(sql`select count(*) as n from webhook_deliveries where status = 'pending'`)).toBe(GRANTS);
    // Each process has its own key store (the first creates the signing key, the others load it).
    const kek = new Kek(randomBytes(32));
    const keyStores: KeyStore[] = [];
    for (const db of pools) {
      const keys = new KeyStore(db, kek, clock);
      await keys.init();
      keyStores.push(keys);
    }
    const log = pino({ level: 'silent' });
    const deps = pools.map((db, i) => ({ db, clock, keys: keyStores[i]!, issuer: ISSUER, log }));

    const started = performance.now();
    const perProcess = [0, 0, 0];
    let rounds = 0;
    for (; rounds < 50; rounds++) {
      const results = await Promise.all(deps.map((d) => deliverWebhooks(d, clock.now())));
      results.forEach((r, i) => (perProcess[i]! += r.processed));
      if ((await count(sql`select count(*) as n from webhook_deliveries where status = 'pending'`)) === 0) break;
      // Anything left waits for a retry's backoff (or a lease): move past the longest one.
      clock.advance(backoffSeconds(MAX_ATTEMPTS));
    }
    const ms = performance.now() - started;
    console.log(`delivered ${received.length} webhooks with 3 pools in ${ms.toFixed(0)} ms over ${rounds + 1} round(s); attempts per process: ${perProcess.join(', ')}`);

    // Every delivery row is delivered, on its first attempt, and nothing is pending or failed.
    const statuses = (await sql<{ status: string; n: string }>`select status, count(*) as n from webhook_deliveries group by status`.execute(database.db)).rows;
    expect(Object.fromEntries(statuses.map((r) => [r.status, Number(r.n)]))).toEqual({ delivered: GRANTS });
    expect(await count(sql`select count(*) as n from webhook_deliveries where attempts <> 1 or delivered_at is null or last_error is not null`)).toBe(0);
    expect(perProcess.reduce((a, b) => a + b, 0)).toBe(GRANTS);

    // The receiver got exactly one request per grant: distinct events (jti = event id), distinct grants.
    expect(received).toHaveLength(GRANTS);
    const jwks = createLocalJWKSet(keyStores[0]!.jwks() as JSONWebKeySet);
    const kid = keyStores[0]!.currentKid;
    // Every request is a POST of a SET, signed (JWS protected header naming the current key) with a signature that verifies.
    expect(new Set(received.map((r) => `${r.method} ${r.path} ${r.contentType}`))).toEqual(new Set(['POST /siem application/secevent+jwt']));
    const headers = new Set(
      received.map((r) => {
        const h = decodeProtectedHeader(r.body);
        return `${h.alg} ${h.typ} ${h.kid}`;
      }),
    );
    expect(headers).toEqual(new Set([`ES256 secevent+jwt ${kid}`]));
    const jtis = new Set<string>();
    const grantIds = new Set<string>();
    const ends = new Set<string>();
    for (const r of received) {
      const { payload } = await jwtVerify(r.body, jwks, { issuer: ISSUER, audience: AUDIENCE, typ: 'secevent+jwt', currentDate: clock.now() });
      const event = (payload.events as Record<string, { tessera_grant: { status: string; ended_by: string } }>)[CAEP_SESSION_REVOKED];
      ends.add(`${event?.tessera_grant.status} by ${event?.tessera_grant.ended_by}`);
      jtis.add(payload.jti!);
      grantIds.add((payload.sub_id as { session: { id: string } }).session.id);
    }
    expect(ends).toEqual(new Set(['expired by system:expiry']));
    expect(jtis.size).toBe(GRANTS);
    expect(grantIds.size).toBe(GRANTS);
    const eventIds = (await sql<{ id: string }>`select id from security_events`.execute(database.db)).rows.map((r) => r.id);
    expect([...jtis].sort()).toEqual(eventIds.sort());
    const expiredIds = (await sql<{ id: string }>`select id from grants where status = 'expired'`.execute(database.db)).rows.map((r) => r.id);
    expect([...grantIds].sort()).toEqual(expiredIds.sort());

    // A further round from every process finds nothing due, and sends nothing.
    expect((await Promise.all(deps.map((d) => deliverWebhooks(d, clock.now())))).map((r) => r.processed)).toEqual([0, 0, 0]);
    expect(received).toHaveLength(GRANTS);
    // 10,000 signed POSTs, their receiver and three pools share one event loop here: more than the default 30 s on a busy machine.
  }, 60_000);

  it('a process killed mid-batch leaves nothing stuck: its locked rows go to the next sweep', async () => {
    await sql`truncate webhook_deliveries, security_events`.execute(database.db);
    await sql`delete from grants`.execute(database.db);
    await insertExpiringGrants(200);
    const victim = new pg.Client({ connectionString: database.url });
    await victim.connect();
    victim.on('error', () => {});
    await victim.query('begin');
    await victim.query(`update grants set status = 'expired', ended_by = 'system:expiry' where id in (select id from grants where status = 'active' limit 100 for update)`);
    const pid = (await victim.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    const at = new Date(exp.getTime() + 1_000);
    // While the victim holds its batch, the others take the rest and skip its rows.
    expect((await expireGrants({ db: pools[0]!, clock }, at)).processed).toBe(100);
    await sql`select pg_terminate_backend(${pid})`.execute(database.db);
    await victim.end().catch(() => {});
    // Its transaction rolled back: the next sweep ends those grants, with their events.
    expect((await expireGrants({ db: pools[1]!, clock }, at)).processed).toBe(100);
    expect(await count(sql`select count(*) as n from security_events`)).toBe(200);
    // The victim's staged audit events rolled back with it: one per grant, none twice.
    await flushPendingAudit(database.db, at);
    expect(await count(sql`select count(distinct target_id) as n from audit_events where action = 'grant.expired' and target_id in (select id::text from grants)`)).toBe(200);
    expect(await count(sql`select count(*) as n from audit_events where action = 'grant.expired' and target_id in (select id::text from grants)`)).toBe(200);
  });
});
