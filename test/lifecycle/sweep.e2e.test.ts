import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { createDatabase, type Database } from '../../src/db/database.js';
import { expireGrants } from '../../src/grants/expire-grants.job.js';
import { flushPendingAudit } from '../../src/audit/audit-outbox.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ManualClock } from '../../src/lib/clock.js';

const GRANTS = 10_000;
const clock = new ManualClock('2026-11-22T12:00:02Z');
const exp = new Date('2026-11-22T12:00:00Z');
let database: TestDatabase;
let pools: Database[];

beforeAll(async () => {
  database = await createTestDatabase();
  pools = [1, 2, 3].map(() => createDatabase({ url: database.url, maxConnections: 4 }).db);
  await database.db
    .insertInto('webhook_subscriptions')
    .values({ id: randomUUID(), url: 'http://127.0.0.1:9/siem', audience: 'siem', created_by: 'test', created_at: exp })
    .execute();
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.destroy()));
  await database.drop();
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
