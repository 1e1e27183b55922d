import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { appendAuditEvents } from '../../src/audit/audit.repository.js';
import { purgeAuditEventsBefore } from '../../src/audit/audit-retention.js';
import { verifyAuditChain } from '../../src/audit/verify-chain.js';
import { computeAuditHash } from '../../src/audit/audit-event.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { sampleEvent, tamper } from './support.js';

const NOW = new Date('2026-11-22T15:00:00.000Z');

describe('verifyAuditChain', () => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await createTestDatabase();
    await appendAuditEvents(t.db, Array.from({ length: 25 }, (_, i) => sampleEvent(i + 1)), NOW);
  });
  afterEach(() => t.drop());

  it('accepts an untouched chain, streaming in batches with progress', async () => {
    const progress: Array<[number, number]> = [];
    const result = await verifyAuditChain(t.db, { batchSize: 10, onProgress: (c, n) => progress.push([c, n]) });
    expect(result).toMatchObject({ ok: true, count: 25 });
    expect(progress).toEqual([
      [10, 25],
      [20, 25],
      [25, 25],
    ]);
  });

  it('accepts an empty chain', async () => {
    const empty = await createTestDatabase();
    expect(await verifyAuditChain(empty.db)).toMatchObject({ ok: true, count: 0 });
    await empty.drop();
  });

  it.each(['actor', 'outcome', 'data', 'at'])('detects an UPDATE of %s at the edited seq', async (column) => {
    const set = {
      actor: sql`actor = 'admin:mallory'`,
      outcome: sql`outcome = 'failure'`,
      data: sql`data = jsonb_set(data, '{task}', '"other"')`,
      at: sql`at = at + interval '1 millisecond'`,
    }[column]!;
    await tamper(t.db, sql`update audit_events set ${set} where seq = 17`);
    const result = await verifyAuditChain(t.db, { batchSize: 7 });
    expect(result).toEqual({ ok: false, count: 16, brokenAt: '17', reason: 'hash_mismatch' });
  });

  it('detects an edit whose hash was recomputed, at the next link', async () => {
    const row = await t.db.selectFrom('audit_events').selectAll().where('seq', '=', '9').executeTakeFirstOrThrow();
    const forged = { ...row, actor: 'admin:mallory' };
    const hash = computeAuditHash(row.prev_hash, forged);
    await tamper(t.db, sql`update audit_events set actor = ${forged.actor}, hash = ${hash} where seq = 9`);
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: false, brokenAt: '10', reason: 'prev_hash_mismatch' });
  });

  it('detects a DELETE in the middle as a gap at the missing seq', async () => {
    await tamper(t.db, sql`delete from audit_events where seq = 12`);
    const result = await verifyAuditChain(t.db, { batchSize: 5 });
    expect(result).toEqual({ ok: false, count: 11, brokenAt: '12', reason: 'gap' });
  });

  it('detects a DELETE of the first event', async () => {
    await tamper(t.db, sql`delete from audit_events where seq = 1`);
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: false, count: 0, brokenAt: '1', reason: 'gap' });
  });

  it('detects a DELETE followed by renumbering the rows after it', async () => {
    await tamper(t.db, sql`delete from audit_events where seq = 12`);
    await tamper(t.db, sql`update audit_events set seq = seq - 1 where seq > 12`);
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: false, brokenAt: '12', reason: 'reorder' });
  });

  it('detects two rows swapped (contents moved, seq kept) at the first moved position', async () => {
    // Moving seq moves the whole row, which is the same as swapping every other column in place.
    await tamper(
      t.db,
      sql`update audit_events set seq = 1000000 where seq = 6`,
      sql`update audit_events set seq = 6 where seq = 20`,
      sql`update audit_events set seq = 20 where seq = 1000000`,
    );
    const result = await verifyAuditChain(t.db, { batchSize: 4 });
    expect(result).toEqual({ ok: false, count: 5, brokenAt: '6', reason: 'reorder' });
  });

  it('detects the anchor moved without a retention event (a silent purge)', async () => {
    const row = await t.db
      .selectFrom('audit_events')
      .select(['seq', 'hash'])
      .where('seq', '=', '5')
      .executeTakeFirstOrThrow();
    await tamper(t.db, sql`delete from audit_events where seq <= 5`);
    await tamper(t.db, sql`update audit_anchor set seq = ${row.seq}, hash = ${row.hash}`);
    expect(await verifyAuditChain(t.db)).toEqual({ ok: false, count: 20, brokenAt: '6', reason: 'anchor_mismatch' });
  });

  it('returns the head, and given a head seen earlier detects the newest events deleted', async () => {
    const first = await verifyAuditChain(t.db);
    expect(first).toMatchObject({ ok: true, count: 25, head: { seq: '25' } });
    const head = first.ok ? first.head : undefined;
    expect(await verifyAuditChain(t.db, { expectHead: head })).toMatchObject({ ok: true, checkpoint: 'matched' });
    await tamper(t.db, sql`delete from audit_events where seq > 22`);
    // On its own the shorter chain is flawless: only the head kept elsewhere tells.
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, count: 22, head: { seq: '22' } });
    expect(await verifyAuditChain(t.db, { expectHead: head })).toEqual({ ok: false, count: 22, brokenAt: '23', reason: 'truncated' });
  });

  it('detects the newest events replaced by others at a head seen earlier', async () => {
    const first = await verifyAuditChain(t.db);
    await tamper(t.db, sql`delete from audit_events where seq > 20`);
    await appendAuditEvents(t.db, [90, 91, 92, 93, 94].map(sampleEvent), NOW);
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, count: 25 });
    expect(await verifyAuditChain(t.db, { expectHead: first.ok ? first.head : undefined })).toEqual({ ok: false, count: 25, brokenAt: '25', reason: 'checkpoint_mismatch' });
  });

  it('accepts a head that retention has purged since, and one it made the anchor', async () => {
    const row5 = await t.db.selectFrom('audit_events').select(['seq', 'hash']).where('seq', '=', '5').executeTakeFirstOrThrow();
    const head = await verifyAuditChain(t.db);
    await purgeAuditEventsBefore(t.db, new Date(NOW.getTime() + 1), 'admin:alice', NOW);
    expect(await verifyAuditChain(t.db, { expectHead: row5 })).toMatchObject({ ok: true, count: 1, checkpoint: 'purged' });
    expect(await verifyAuditChain(t.db, { expectHead: head.ok ? head.head : undefined })).toMatchObject({ ok: true, checkpoint: 'matched' });
  });
});
