import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createDatabase } from '../src/db/database.js';
import { migrationPool } from '../src/db/prepare.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

describe('database', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it('is a real Postgres with every migration applied', async () => {
    const { rows } = await sql<{ v: string }>`select version() as v`.execute(t.db);
    expect(rows[0]!.v).toMatch(/^PostgreSQL \d+/);
    const tables = await t.db.introspection.getTables();
    expect(tables.map((x) => x.name)).toEqual(expect.arrayContaining(['grants', 'signing_keys', 'workloads']));
  });

  it('migrates over a pool whose statements may run long (an index build) but whose lock waits stay short', async () => {
    const request = createDatabase({ url: t.url });
    const migration = migrationPool(t.url);
    try {
      const show = async (db: typeof t.db, setting: string) => (await sql<Record<string, string>>`select current_setting(${setting}) as v`.execute(db)).rows[0]!.v;
      expect([await show(request.db, 'statement_timeout'), await show(request.db, 'lock_timeout')]).toEqual(['5s', '0']);
      expect([await show(migration.db, 'statement_timeout'), await show(migration.db, 'lock_timeout')]).toEqual(['30min', '5s']);
      // Longer than the request path allows, and fine here.
      await sql`select pg_sleep(5.5)`.execute(migration.db);
    } finally {
      await request.db.destroy();
      await migration.db.destroy();
    }
  });

  // Found by the Postgres-freeze drill: a transaction whose statement outlived the client's read timeout
  // went back to the pool still open on the server (its ROLLBACK, queued behind, timed out unsent), and
  // the next autocommit write on that connection "succeeded" inside it and was never committed. For a
  // mint that is a token without a grant row.
  it('never hands out a connection still inside a transaction a timed-out statement left open', async () => {
    await sql`create table pool_probe (n int)`.execute(t.db);
    const { db } = createDatabase({ url: t.ownerUrl!, maxConnections: 1, queryTimeoutMs: 300 });
    const other = new pg.Client({ connectionString: t.ownerUrl });
    await other.connect();
    try {
      const abandoned = db.transaction().execute((trx) => sql`select pg_sleep(0.8) as abandoned`.execute(trx));
      await expect(abandoned).rejects.toThrow(/Query read timeout/);
      // Wait (on the server, not a clock) until the slow statement is over, so the next one can run.
      while ((await other.query("select count(*)::int as n from pg_stat_activity where state = 'active' and query like '%as abandoned'")).rows[0].n > 0);
      // The pool's only connection: without the guard this insert runs inside the abandoned transaction.
      await sql`insert into pool_probe values (1)`.execute(db);
      expect((await other.query('select count(*)::int as n from pool_probe')).rows[0].n).toBe(1);
    } finally {
      await other.end();
      await db.destroy();
    }
  });
});
