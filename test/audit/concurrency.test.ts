import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { appendAuditEvent, listAuditEvents } from '../../src/audit/audit.repository.js';
import { verifyAuditChain } from '../../src/audit/verify-chain.js';
import { createDatabase, type Database } from '../../src/db/database.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
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
