import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { AUDIT_CHAIN_LOCK_KEY, appendAuditEvent, listAuditEvents } from '../../src/audit/audit.repository.js';
import { flushPendingAudit, recordAudit, sealPendingAudit } from '../../src/audit/audit-outbox.js';
import { verifyAuditChain } from '../../src/audit/verify-chain.js';
import { createDatabase, type Database } from '../../src/db/database.js';
import { Kek } from '../../src/keys/kek.js';
import { ManualClock } from '../../src/lib/clock.js';
import { startTestBroker, post, type TestBroker } from '../support/broker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startFakeIssuer } from '../support/fake-issuer.js';
import { agentKey, testConfig } from '../support/fixtures.js';
import { sampleEvent } from './support.js';

const WRITERS = 20;
const APPENDS_PER_WRITER = 10;

describe('concurrent appends', () => {
  let t: TestDatabase;
  // Two pools over the same database stand in for two broker processes: separate connections,
  // nothing shared in memory, only Postgres to coordinate through.
  let processes: Database[];
  beforeAll(async () => {
    t = await createTestDatabase();
    processes = [0, 1].map(() => createDatabase({ url: t.url, maxConnections: WRITERS / 2 }).db);
  });
  afterAll(async () => {
    await Promise.all(processes.map((db) => db.destroy()));
    await t.drop();
  });

  it('yields one gapless, valid chain from 20 parallel transactions in two processes', async () => {
    const now = new Date('2026-11-22T15:00:00.000Z');
    const writer = async (w: number) => {
      const db = processes[w % 2]!;
      for (let i = 0; i < APPENDS_PER_WRITER; i++) {
        await db.transaction().execute(async (trx) => {
          // Some work of the caller's own first, so transactions overlap before they reach the lock.
          await sql`select pg_sleep(0.001)`.execute(trx);
          await appendAuditEvent(trx, sampleEvent(w * 100 + i), now);
        });
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));

    const total = WRITERS * APPENDS_PER_WRITER;
    const events = await listAuditEvents(t.db, { limit: 1000 });
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, i) => `${i + 1}`));
    expect(new Set(events.map((e) => e.target_id)).size).toBe(total);
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, count: total });
  });
});

describe('two broker processes minting at once', () => {
  const MINTS_PER_BROKER = 30;
  // Minting in waves keeps the two cores the suite shares busy without queueing past the test timeout.
  const WAVE = 10;

  it('leave one gapless, valid chain: every mint sealed once, counts match, the outbox empty', async () => {
    const database = await createTestDatabase();
    const clock = new ManualClock();
    const ci = await startFakeIssuer({ now: () => clock.now() });
    // One key-encryption key, as replicas of one deployment share it; each broker its own pool and sealer.
    const shared = { database, clock, kek: new Kek(randomBytes(32)), scheduler: false };
    const brokers: TestBroker[] = [];
    try {
      for (let i = 0; i < 2; i++) brokers.push(await startTestBroker(testConfig(ci, (await agentKey()).jwk), shared));
      const mint = async (b: TestBroker) => post(`${b.url}/v1/grants`, { task: 'deploy-prod', params: { service: 'api' } }, { authorization: `Bearer ${await ci.token()}` });
      const statuses: number[] = [];
      for (let w = 0; w < MINTS_PER_BROKER / (WAVE / 2); w++) {
        const wave = await Promise.all(Array.from({ length: WAVE }, (_, i) => mint(brokers[i % 2]!)));
        statuses.push(...wave.map((r) => r.status));
      }
      expect(statuses).toEqual(Array(2 * MINTS_PER_BROKER).fill(201));
      // Both sealers have been running on their timers meanwhile; flushing both at once races them once more.
      await Promise.all(brokers.map((b) => b.deps.audit.flush()));

      const db = database.db;
      expect(await db.selectFrom('audit_pending').select('id').execute()).toEqual([]);
      const { rows } = await sql<{ action: string; n: string; targets: string; max: string }>`
        select action, count(*) as n, count(distinct target_id) as targets, max(seq) as max from audit_events group by action`.execute(db);
      const by = Object.fromEntries(rows.map((r) => [r.action, r]));
      expect(by['grant.minted']).toMatchObject({ n: String(2 * MINTS_PER_BROKER), targets: String(2 * MINTS_PER_BROKER) });
      expect(by['decision.recorded']).toMatchObject({ n: String(2 * MINTS_PER_BROKER), targets: String(2 * MINTS_PER_BROKER) });
      const grants = await db.selectFrom('grants').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
      expect(grants.n).toBe(String(2 * MINTS_PER_BROKER));
      const total = rows.reduce((sum, r) => sum + Number(r.n), 0);
      expect(Math.max(...rows.map((r) => Number(r.max)))).toBe(total); // gapless from 1
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true, count: total });
    } finally {
      for (const b of brokers) await b.stop();
      await ci.close();
      await database.drop();
    }
  });
});

describe('a sealer that dies mid-batch', () => {
  const BATCH = 50;
  let t: TestDatabase;
  beforeEach(async () => {
    t = await createTestDatabase();
  });
  afterEach(() => t.drop());

  /** Waits, by asking Postgres, until backend `pid` is blocked on a lock. */
  async function blocked(pid: number): Promise<void> {
    for (let i = 0; i < 10_000; i++) {
      // pg_locks, not pg_stat_activity: the latter hides another role's wait events from the owner.
      const { rows } = await sql<{ n: string }>`select count(*) as n from pg_locks where pid = ${pid} and not granted`.execute(t.db);
      if (rows[0]!.n === '1') return;
    }
    throw new Error(`backend ${pid} never blocked`);
  }

  it.each([
    ['after claiming its batch', sql`select pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK_KEY}::bigint)`],
    ['while writing its events', sql`lock table audit_events in share mode`],
  ])('%s loses and doubles nothing: its rows go to the next seal', async (_when, hold) => {
    const now = new Date('2026-11-22T15:00:00.000Z');
    // One connection each, so the pid asked for is the one that runs the seal.
    const [victim, survivor] = [1, 2].map(() => createDatabase({ url: t.url, maxConnections: 1 }).db) as [Database, Database];
    const pidOf = async (db: Database) => (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db)).rows[0]!.pid;
    try {
      await recordAudit(survivor, Array.from({ length: 3 * BATCH }, (_, i) => sampleEvent(i)), now);
      const [pid, survivorPid] = [await pidOf(victim), await pidOf(survivor)];
      const sealed = await t.db.transaction().execute(async (owner) => {
        await hold.execute(owner);
        const dying = sealPendingAudit(victim, now, BATCH);
        dying.catch(() => {});
        await blocked(pid);
        // A second sealer claims the next batch past the victim's locked rows, then queues behind it.
        const next = sealPendingAudit(survivor, now, BATCH);
        await blocked(survivorPid);
        await sql`select pg_terminate_backend(${pid})`.execute(owner);
        await expect(dying).rejects.toThrow();
        // Wrapped: returning the promise itself would make this transaction wait for the seal it blocks.
        return { next };
      });
      expect(await sealed.next).toBe(BATCH);
      expect(await flushPendingAudit(survivor, now)).toBe(2 * BATCH);

      expect(await survivor.selectFrom('audit_pending').select('id').execute()).toEqual([]);
      const events = await listAuditEvents(survivor, { limit: 1000 });
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 3 * BATCH }, (_, i) => `${i + 1}`));
      expect(new Set(events.map((e) => e.target_id)).size).toBe(3 * BATCH);
      // The survivor went first with the batch after the victim's (whose rows were locked when it died).
      expect(events.slice(0, BATCH).map((e) => e.target_id)).toEqual(Array.from({ length: BATCH }, (_, i) => `grant-${BATCH + i}`));
      expect(await verifyAuditChain(survivor)).toMatchObject({ ok: true, count: 3 * BATCH });
    } finally {
      await victim.destroy().catch(() => {});
      await survivor.destroy();
    }
  });
});
