import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../src/db/database.js';
import { FactsReader, type FactsQuery } from '../../src/decisions/history.js';
import { RequestCounter, minuteOf } from '../../src/decisions/request-counter.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const NOW = new Date('2026-06-01T12:00:30Z');
let t: TestDatabase;
/** A second session, to hold locks that stop the counter's or the reader's statement in Postgres. */
let other: pg.Client;

beforeAll(async () => {
  t = await createTestDatabase();
  other = new pg.Client({ connectionString: t.ownerUrl });
  await other.connect();
  await t.db.selectFrom('request_buckets').select('n').execute(); // the pool's connection is open before any lock
});
afterAll(async () => {
  await other.end();
  await t.drop();
});

const ask = (workloadId: string): FactsQuery => ({ workloadId, task: 'deploy', params: {}, now: NOW, baselineDays: 30, countActiveGrants: false, signals: [] });
const lastMinute = (reader: FactsReader, workloadId: string) => reader.read(ask(workloadId)).then((f) => f.history.requestsLastMinute);
const countMany = (counter: RequestCounter, workloadId: string, n: number, at = NOW) => {
  for (let i = 0; i < n; i++) counter.increment(workloadId, at);
};
/** Resolves once Postgres shows a session of this database waiting for a lock. */
async function someoneWaits(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await other.query<{ n: string }>(`select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
    if (Number(rows[0]!.n) > 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no session waited for the lock');
}

describe('RequestCounter', () => {
  it('reads its own count exactly while its write is in flight, and after it commits', async () => {
    const counter = new RequestCounter(t.db);
    await counter.start(3_600_000); // its shard; the test flushes by hand
    const reader = new FactsReader(t.db, counter);
    countMany(counter, 'w-flight', 5);

    // The write reaches Postgres and waits there: the counts are neither pending nor committed.
    await other.query('begin');
    await other.query('lock table request_buckets in share mode');
    const flushed = counter.flush();
    await someoneWaits();
    expect(await lastMinute(reader, 'w-flight')).toBe(5);
    await other.query('commit');
    await flushed;
    expect(await lastMinute(reader, 'w-flight')).toBe(5);
    await counter.stop();
  });

  it('counts once a read asked before the write and answered after it committed', async () => {
    const counter = new RequestCounter(t.db);
    await counter.start(3_600_000);
    const reader = new FactsReader(t.db, counter);
    countMany(counter, 'w-late', 4);

    // The read fixes its own counts when asked; its statement waits on a table it reads, and runs
    // after the write has committed.
    await other.query('begin');
    await other.query('lock table usage_baseline in access exclusive mode');
    const read = lastMinute(reader, 'w-late');
    await someoneWaits();
    await counter.flush();
    await other.query('commit');
    expect(await read).toBe(4);
    await counter.stop();
  });

  it('a counted read sees the counted reads asked before it, even while their answers are in flight', async () => {
    const counter = new RequestCounter(t.db);
    await counter.start(3_600_000);
    const reader = new FactsReader(t.db, counter);
    // All four wait in Postgres together; each was counted as it was asked.
    await other.query('begin');
    await other.query('lock table usage_baseline in access exclusive mode');
    const reads = [1, 2, 3, 4].map(() => reader.read({ ...ask('w-burst'), count: true }));
    await someoneWaits();
    await other.query('commit');
    expect((await Promise.all(reads)).map((f) => f.history.requestsLastMinute)).toEqual([0, 1, 2, 3]);
    expect(await lastMinute(reader, 'w-burst')).toBe(4); // an uncounted read counts nothing
    expect(await lastMinute(reader, 'w-burst')).toBe(4);
    await counter.stop();
  });

  it("sees another replica's counts once that replica has written them", async () => {
    const a = new RequestCounter(t.db);
    const b = new RequestCounter(t.db);
    await a.start(3_600_000);
    await b.start(3_600_000);
    expect(a.shard).not.toBe(b.shard);
    const readsB = new FactsReader(t.db, b);
    countMany(a, 'w-two', 3);
    countMany(b, 'w-two', 2);
    expect(await lastMinute(readsB, 'w-two')).toBe(2);
    await a.flush();
    await b.flush();
    expect(await lastMinute(readsB, 'w-two')).toBe(5);
    expect(await lastMinute(new FactsReader(t.db, a), 'w-two')).toBe(5);
    await a.stop();
    await b.stop();
  });

  it('keeps counts whose write failed, and the next write adds them once', async () => {
    // The counter's own pool gives up on a lock after 100 ms: a failed write, through Postgres.
    const { db: impatient } = createDatabase({ url: `${t.ownerUrl}?options=${encodeURIComponent('-c lock_timeout=100ms')}` });
    const counter = new RequestCounter(impatient);
    await counter.start(3_600_000);
    const rows = async () => (await t.db.selectFrom('request_buckets').select(['shard', 'n']).where('workload_id', '=', 'w-retry').execute()).map((r) => ({ ...r }));
    countMany(counter, 'w-retry', 2);
    await counter.flush();
    countMany(counter, 'w-retry', 3);
    await other.query('begin');
    await other.query('lock table request_buckets in share mode');
    await expect(counter.flush()).rejects.toThrow(/lock timeout/);
    await other.query('commit');
    expect(await rows()).toEqual([{ shard: counter.shard, n: 2 }]);
    await counter.flush();
    expect(await rows()).toEqual([{ shard: counter.shard, n: 5 }]);
    await counter.flush(); // nothing changed: nothing written
    expect(await rows()).toEqual([{ shard: counter.shard, n: 5 }]);
    await counter.stop();
    await impatient.destroy();
  });

  it('loses no count when the clock jumps ahead and back: forgotten minutes are read from its shard', async () => {
    const counter = new RequestCounter(t.db);
    await counter.start(3_600_000);
    const reader = new FactsReader(t.db, counter);
    countMany(counter, 'w-jump', 2, new Date(NOW.getTime() - 30 * 60_000));
    await counter.flush();
    countMany(counter, 'w-jump', 1, new Date(NOW.getTime() + 2 * 3_600_000)); // the clock two hours ahead
    await counter.flush(); // forgets the minutes before the hour that clock reads
    expect(counter.own('w-jump', minuteOf(new Date(NOW.getTime() - 30 * 60_000)))).toBe(0);
    // Back at NOW: the two from half an hour ago still count, from Postgres (and the one "ahead" from memory).
    expect((await reader.read(ask('w-jump'))).history.requestsLastHour).toBe(3);
    countMany(counter, 'w-jump', 4);
    await counter.flush();
    expect((await reader.read(ask('w-jump'))).history).toMatchObject({ requestsLastMinute: 4, requestsLastHour: 7 });
    await counter.stop();
  });

  it('stop writes the requests counted while a write was in flight', async () => {
    const counter = new RequestCounter(t.db);
    await counter.start(3_600_000);
    countMany(counter, 'w-stop', 2);
    await other.query('begin');
    await other.query('lock table request_buckets in share mode');
    const inFlight = counter.flush();
    await someoneWaits();
    countMany(counter, 'w-stop', 1);
    const stopped = counter.stop();
    await other.query('commit');
    await inFlight;
    await stopped;
    const { n } = await t.db.selectFrom('request_buckets').select('n').where('workload_id', '=', 'w-stop').executeTakeFirstOrThrow();
    expect(n).toBe(3);
  });

  it('forgets written counts older than the hour window', async () => {
    const counter = new RequestCounter(t.db);
    await counter.start(3_600_000);
    const old = new Date(NOW.getTime() - 61 * 60_000);
    countMany(counter, 'w-old', 2, old);
    countMany(counter, 'w-old', 1);
    await counter.flush();
    expect(counter.own('w-old', minuteOf(old))).toBe(0);
    expect(counter.own('w-old', minuteOf(NOW))).toBe(1);
    expect(counter.ownSince('w-old', new Date(NOW.getTime() - 59 * 60_000))).toBe(1);
    await counter.stop();
  });
});
