import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/audit/audit-outbox.js';
import { AuditSealer } from '../../src/audit/sealer.js';
import { SEALER_APPLICATION_NAME, SealerThread } from '../../src/audit/sealer-thread.js';
import { verifyAuditChain } from '../../src/audit/verify-chain.js';
import { createDatabase, isDatabaseUnavailable } from '../../src/db/database.js';
import { freePort } from '../../src/db/embedded.js';
import { ManualClock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/lib/logger.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { sampleEvent } from './support.js';

const count = async (db: TestDatabase['db'], table: 'audit_pending' | 'audit_events') =>
  Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
const sealerConnections = async (t: TestDatabase) =>
  Number((await sql<{ n: string }>`select count(*) as n from pg_stat_activity where datname = current_database() and application_name = ${SEALER_APPLICATION_NAME}`.execute(t.db)).rows[0]!.n);
const warnings = (lines: Array<Record<string, unknown>>) => lines.filter((l) => String(l.msg).includes('sealer thread stopped'));

function capturingLog() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, log: createLogger('debug', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }) };
}

describe('a broker seals on its sealer thread', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startTestBroker({}, { scheduler: false });
  });
  afterAll(() => broker.stop());

  it('chains what the request thread staged, over a connection of its own', async () => {
    const db = broker.database.db;
    const before = await count(db, 'audit_events');
    await recordAudit(broker.deps.db, [1, 2, 3].map(sampleEvent), broker.clock.now());
    expect(broker.deps.audit.threaded).toBe(true);

    await broker.deps.audit.flush();

    expect(await count(db, 'audit_pending')).toBe(0);
    const events = await db.selectFrom('audit_events').select('target_id').where('target_id', 'in', ['grant-1', 'grant-2', 'grant-3']).execute();
    expect(events.map((e) => e.target_id).sort()).toEqual(['grant-1', 'grant-2', 'grant-3']);
    expect(await count(db, 'audit_events')).toBeGreaterThanOrEqual(before + 3);
    expect((await verifyAuditChain(broker.deps.db)).ok).toBe(true);
    expect(await sealerConnections(broker.database)).toBe(1);
    expect(warnings(broker.logs)).toEqual([]);
  });
});

describe('the sealer thread', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  function sealerWith(entry?: string, bounds: { startMs?: number; silenceMs?: number } = {}) {
    const { lines, log } = capturingLog();
    const { db } = createDatabase({ url: t.url });
    const thread = new SealerThread(t.url, log, { ...(entry && { entry: new URL(entry, import.meta.url) }), ...bounds });
    const sealer = new AuditSealer(db, new ManualClock(), log, thread);
    return { db, lines, thread, sealer, async close() { await sealer.stop(); await db.destroy(); } };
  }

  it('dies in a flush: the flush is sealed in-process instead, with one warning, and so are the next ones', async () => {
    const s = sealerWith('./fixtures/exits-on-flush.worker.ts');
    try {
      await recordAudit(s.db, [10, 11].map(sampleEvent), new Date());
      expect(s.sealer.threaded).toBe(true);

      expect(await s.sealer.flush()).toBe(2);

      expect(s.sealer.threaded).toBe(false);
      expect(await count(t.db, 'audit_pending')).toBe(0);
      await recordAudit(s.db, [12].map(sampleEvent), new Date());
      expect(await s.sealer.flush()).toBe(1);
      expect(warnings(s.lines)).toHaveLength(1);
      expect(warnings(s.lines)[0]!.err).toMatch(/exited \(code 3\)/);
    } finally {
      await s.close();
    }
  });

  // The silent thread keeps its long start-up bound, so the flush waits for 'ready' and the silence is mid-flush.
  it.each([
    { what: 'never starts: sealing goes in-process', fixture: 'fails-to-load', bounds: {}, id: 20, warning: /does not start/ },
    { what: 'falls silent in a flush: it is ended after the silence bound and the flush is sealed in-process', fixture: 'never-answers', bounds: { silenceMs: 300 }, id: 30, warning: /said nothing for 300 ms/ },
    { what: 'never says it is ready: it is ended after the start-up bound and sealing goes in-process', fixture: 'never-ready', bounds: { startMs: 300 }, id: 35, warning: /did not start within 300 ms/ },
  ])('$what', async ({ fixture, bounds, id, warning }) => {
    const s = sealerWith(`./fixtures/${fixture}.worker.ts`, bounds);
    try {
      await recordAudit(s.db, [id].map(sampleEvent), new Date());
      expect(await s.sealer.flush()).toBe(1);
      expect(s.sealer.threaded).toBe(false);
      expect(warnings(s.lines)[0]?.err).toMatch(warning);
    } finally {
      await s.close();
    }
  });

  it('idles between flushes without being taken for hung', async () => {
    // A bound a real flush stays well inside even on a loaded machine, and an idle spell past it.
    const s = sealerWith(undefined, { silenceMs: 2_000 });
    try {
      await recordAudit(s.db, [36].map(sampleEvent), new Date());
      expect(await s.sealer.flush()).toBe(1); // 'ready' has arrived: the thread answered
      await new Promise((r) => setTimeout(r, 3_000));
      expect(s.sealer.threaded).toBe(true);
      expect(warnings(s.lines)).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it('stops within its bound when stuck in a flush: that flush is sealed in-process', async () => {
    const s = sealerWith('./fixtures/never-answers.worker.ts');
    try {
      await recordAudit(s.db, [37].map(sampleEvent), new Date());
      const flushing = s.sealer.flush();
      await new Promise((r) => setTimeout(r, 50));
      const started = Date.now();
      await s.sealer.stop();
      expect(Date.now() - started).toBeLessThan(9_000); // the thread's 5 s stop bound, not its 90 s silence bound
      expect(await flushing).toBe(1);
      expect(await count(t.db, 'audit_pending')).toBe(0);
      expect(s.lines.filter((l) => String(l.msg).includes('did not stop in time'))).toHaveLength(1);
    } finally {
      await s.db.destroy();
    }
  });

  it("rejects with the database's error as it was, so an outage still reads as one", async () => {
    const { log } = capturingLog();
    const thread = new SealerThread(`postgres://tessera@127.0.0.1:${await freePort()}/tessera`, log);
    try {
      const err = (await thread.flush(new Date()).catch((e: unknown) => e)) as Error & { code?: string };
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe('ECONNREFUSED');
      expect(isDatabaseUnavailable(err)).toBe(true);
      expect(thread.alive).toBe(true); // a failed flush is not a failed thread
    } finally {
      await thread.stop();
    }
  });

  it('stops gracefully: seals what is left, then closes its connection without being terminated', async () => {
    const s = sealerWith();
    await recordAudit(s.db, [40].map(sampleEvent), new Date());
    expect(await s.sealer.flush()).toBe(1);
    expect(await sealerConnections(t)).toBe(1);
    await recordAudit(s.db, [41].map(sampleEvent), new Date());
    const started = Date.now();
    await s.close();
    expect(Date.now() - started).toBeLessThan(4_000); // the forced end comes after 5 s
    expect(await count(t.db, 'audit_pending')).toBe(0);
    expect(await sealerConnections(t)).toBe(0);
    expect(s.lines.filter((l) => String(l.msg).includes('terminating'))).toEqual([]);
  });
});

describe('a broker that shuts down', () => {
  it('seals what is left and closes the thread', async () => {
    const t = await createTestDatabase();
    const broker = await startTestBroker({}, { scheduler: false, database: t });
    try {
      await recordAudit(broker.deps.db, [50].map(sampleEvent), broker.clock.now());
      await broker.deps.audit.flush();
      expect(await sealerConnections(t)).toBe(1);
      await recordAudit(broker.deps.db, [51].map(sampleEvent), broker.clock.now());
    } finally {
      await broker.stop();
    }
    expect(await count(t.db, 'audit_pending')).toBe(0);
    expect(await sealerConnections(t)).toBe(0);
    await t.drop();
  });
});
