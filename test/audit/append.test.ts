import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { computeAuditHash, GENESIS_HASH, type AuditEvent } from '../../src/audit/audit-event.js';
import {
  appendAuditEvent,
  appendAuditEvents,
  exportAuditEvents,
  listAuditEvents,
} from '../../src/audit/audit.repository.js';
import { AuditSecretError } from '../../src/audit/secret-guard.js';
import { ManualClock } from '../../src/lib/clock.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { sampleEvent } from './support.js';

describe('appending audit events', () => {
  let t: TestDatabase;
  const clock = new ManualClock('2026-11-22T15:00:00.000Z');
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it('links each event to the one before, from the genesis hash', async () => {
    const first = await appendAuditEvent(t.db, sampleEvent(1), clock.now());
    clock.advance(1);
    const odd = { ...sampleEvent(2), data: { at: new Date(0), skip: undefined } };
    const second = await appendAuditEvent(t.db, odd, clock.now());
    expect([first.seq, second.seq]).toEqual(['1', '2']);
    const [r1, r2] = await listAuditEvents(t.db, { limit: 10 });
    expect(r1!.prev_hash).toBe(GENESIS_HASH);
    expect(r2!.prev_hash).toBe(r1!.hash);
    // The stored row hashes to its stored hash: what was hashed is what jsonb gave back.
    expect(computeAuditHash(r2!.prev_hash, r2!)).toBe(second.hash);
    expect(r2!.data).toEqual({ at: '1970-01-01T00:00:00.000Z' });
  });

  it('leaves no event and no gap when the caller rolls back', async () => {
    await expect(
      t.db.transaction().execute(async (trx) => {
        await appendAuditEvent(trx, sampleEvent(3), clock.now());
        throw new Error('grant insert failed');
      }),
    ).rejects.toThrow('grant insert failed');
    const next = await appendAuditEvent(t.db, sampleEvent(4), clock.now());
    expect(next.seq).toBe('3');
    expect((await listAuditEvents(t.db, { targetId: 'grant-3', targetType: 'grant', limit: 10 })).length).toBe(0);
  });

  it('appends a batch as one gapless run under one lock', async () => {
    const heads = await appendAuditEvents(t.db, [5, 6, 7].map(sampleEvent), clock.now());
    expect(heads.map((h) => h.seq)).toEqual(['4', '5', '6']);
    expect(await appendAuditEvents(t.db, [], clock.now())).toEqual([]);
  });

  it('refuses a secret before touching the database', async () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig';
    await expect(appendAuditEvent(t.db, { ...sampleEvent(8), data: { jwt } }, clock.now())).rejects.toBeInstanceOf(
      AuditSecretError,
    );
    expect((await listAuditEvents(t.db, { afterSeq: '6', limit: 10 })).length).toBe(0);
  });

  it('refuses to append under REPEATABLE READ, where the head it reads could be stale', async () => {
    await expect(
      t.db
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute((trx) => appendAuditEvent(trx, sampleEvent(9), clock.now())),
    ).rejects.toThrow(/READ COMMITTED/);
  });

  it('lists the trail of one target and pages with afterSeq', async () => {
    const trail = await listAuditEvents(t.db, { targetType: 'grant', targetId: 'grant-6', limit: 10 });
    expect(trail.map((e) => e.seq)).toEqual(['5']);
    const page = await listAuditEvents(t.db, { afterSeq: '2', limit: 2 });
    expect(page.map((e) => e.seq)).toEqual(['3', '4']);
    const since = await listAuditEvents(t.db, { since: new Date('2026-11-22T15:00:01.000Z'), limit: 10 });
    expect(since.map((e) => e.seq)).toEqual(['2', '3', '4', '5', '6']);
  });

  it('exports JSON lines in seq order, every field needed to re-verify offline', async () => {
    const extra = Array.from({ length: 600 }, (_, i) => sampleEvent(100 + i));
    await appendAuditEvents(t.db, extra, clock.now());
    const lines: string[] = [];
    const progress: number[] = [];
    const n = await exportAuditEvents(t.db, {}, (line) => void lines.push(line), (w) => progress.push(w));
    expect(n).toBe(606);
    expect(progress).toEqual([500, 606]);
    expect(lines.every((l) => l.endsWith('\n'))).toBe(true);
    const parsed = lines.map((l) => JSON.parse(l) as Omit<AuditEvent, 'at'> & { at: string });
    expect(parsed.map((e) => Number(e.seq))).toEqual(Array.from({ length: 606 }, (_, i) => i + 1));
    let prev = GENESIS_HASH;
    for (const e of parsed) {
      expect(e.prev_hash).toBe(prev);
      expect(computeAuditHash(prev, { ...e, at: new Date(e.at) })).toBe(e.hash);
      prev = e.hash;
    }
    const recent: string[] = [];
    await exportAuditEvents(t.db, { since: new Date('2026-11-22T15:00:01.000Z') }, (l) => void recent.push(l));
    expect(recent.length).toBe(605);
  });

  it('keeps no transaction or lock open after an append outside a transaction', async () => {
    const { rows } = await sql<{ n: string }>`
      select count(*) as n from pg_locks where locktype = 'advisory' and granted`.execute(t.db);
    expect(rows[0]!.n).toBe('0');
  });
});
