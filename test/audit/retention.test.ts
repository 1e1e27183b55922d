import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { AUDIT_PURGED_ACTION } from '../../src/audit/audit-event.js';
import { PURGE_BATCH_ROWS, purgeAuditEventsBefore } from '../../src/audit/audit-retention.js';
import { appendAuditEvent, appendAuditEvents, listAuditEvents } from '../../src/audit/audit.repository.js';
import { verifyAuditChain } from '../../src/audit/verify-chain.js';
import { ManualClock } from '../../src/lib/clock.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { sampleEvent, tamper } from './support.js';

describe('purgeAuditEventsBefore', () => {
  let t: TestDatabase;
  const clock = new ManualClock();
  beforeEach(async () => {
    t = await createTestDatabase();
    clock.set('2026-01-01T00:00:00.000Z');
    for (let day = 0; day < 10; day++) {
      await appendAuditEvents(t.db, [1, 2, 3].map((i) => sampleEvent(day * 10 + i)), clock.now());
      clock.advance(86_400);
    }
  });
  afterEach(() => t.drop());

  it('deletes the oldest events, keeps the rest verifiable, and audits itself', async () => {
    const cutoff = new Date('2026-01-04T00:00:00.000Z');
    const [last] = await listAuditEvents(t.db, { afterSeq: '8', limit: 1 });
    const result = await purgeAuditEventsBefore(t.db, cutoff, 'system:scheduler', clock.now());
    expect(result).toMatchObject({ purged: 9, through: { seq: '9', hash: last!.hash }, more: false });
    expect(result.event.seq).toBe('31');

    const remaining = await listAuditEvents(t.db, { limit: 100 });
    expect(remaining[0]!.seq).toBe('10');
    expect(remaining.at(-1)).toMatchObject({
      seq: '31',
      actor: 'system:scheduler',
      action: AUDIT_PURGED_ACTION,
      data: { before: cutoff.toISOString(), count: 9, from_seq: '1', through_seq: '9', through_hash: last!.hash },
    });
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, count: 22 });

    // Appends carry on from the head; a second purge carries on from the new anchor.
    await appendAuditEvent(t.db, sampleEvent(99), clock.now());
    const again = await purgeAuditEventsBefore(t.db, new Date('2026-01-06T00:00:00.000Z'), 'admin:alice', clock.now());
    expect(again).toMatchObject({ purged: 6, through: { seq: '15' } });
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, count: 18 });
  });

  it('purges only a prefix, even when a later event carries an older time', async () => {
    // Another replica's clock ran behind: seq 31 is stamped before the cutoff but follows newer events.
    await appendAuditEvent(t.db, sampleEvent(77), new Date('2026-01-01T12:00:00.000Z'));
    const cutoff = new Date('2026-01-02T00:00:00.000Z');
    const result = await purgeAuditEventsBefore(t.db, cutoff, 'system:scheduler', clock.now());
    expect(result.purged).toBe(3);
    expect((await listAuditEvents(t.db, { targetId: 'grant-77', limit: 10 })).length).toBe(1);
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true });
  });

  it('records a run that had nothing to purge, and leaves the anchor where it was', async () => {
    const cutoff = new Date('2025-01-01T00:00:00.000Z');
    const result = await purgeAuditEventsBefore(t.db, cutoff, 'system:scheduler', clock.now());
    expect(result).toMatchObject({ purged: 0, through: null, more: false, event: { seq: '31' } });
    const anchor = await t.db.selectFrom('audit_anchor').selectAll().executeTakeFirstOrThrow();
    expect(anchor.seq).toBe('0');
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, count: 31 });
  });

  it('purges everything older when every event is older, then only the purge event remains', async () => {
    const result = await purgeAuditEventsBefore(t.db, clock.now(), 'system:scheduler', clock.now());
    expect(result).toMatchObject({ purged: 30, through: { seq: '30' }, more: false });
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, count: 1 });
  });

  it('purges in bounded batches and says when more remain', async () => {
    const many = Array.from({ length: PURGE_BATCH_ROWS }, (_, i) => sampleEvent(1000 + i));
    await appendAuditEvents(t.db, many, clock.now());
    clock.advance(1);
    const first = await purgeAuditEventsBefore(t.db, clock.now(), 'system:scheduler', clock.now());
    expect(first).toMatchObject({ purged: PURGE_BATCH_ROWS, more: true });
    const second = await purgeAuditEventsBefore(t.db, clock.now(), 'system:scheduler', clock.now());
    // The first purge's own event is stamped at the cutoff, so it stays with the second one.
    expect(second).toMatchObject({ purged: 30, more: false });
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, count: 2 });
  });

  it('closes the retention door again before the transaction goes on', async () => {
    await t.db.transaction().execute(async (trx) => {
      await purgeAuditEventsBefore(trx, new Date('2026-01-03T00:00:00.000Z'), 'system:scheduler', clock.now());
      await expect(sql`delete from audit_events`.execute(trx)).rejects.toThrow(/refused/);
    });
  });

  it('still catches an edit of a remaining event after a purge', async () => {
    await purgeAuditEventsBefore(t.db, new Date('2026-01-04T00:00:00.000Z'), 'system:scheduler', clock.now());
    await tamper(t.db, sql`update audit_events set outcome = 'deny' where seq = 10`);
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: false, brokenAt: '10', reason: 'hash_mismatch' });
  });
});
