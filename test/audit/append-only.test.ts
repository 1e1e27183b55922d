import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const row = (seq: number) => sql`
  insert into audit_events (seq, id, at, actor, action, outcome, data, prev_hash, hash)
  values (${seq}, gen_random_uuid(), now(), 'admin:alice', 'config.applied', 'success', '{}',
          repeat('0', 64), repeat('1', 64))`;

describe('audit_events trigger', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
    await row(1).execute(t.db);
  });
  afterAll(() => t.drop());

  it('refuses UPDATE, DELETE and TRUNCATE, even for the superuser the broker runs as', async () => {
    await expect(sql`update audit_events set actor = 'admin:mallory'`.execute(t.db)).rejects.toThrow(
      /UPDATE on audit_events refused/,
    );
    await expect(sql`delete from audit_events`.execute(t.db)).rejects.toThrow(/DELETE on audit_events refused/);
    await expect(sql`truncate audit_events`.execute(t.db)).rejects.toThrow(/TRUNCATE on audit_events refused/);
    const { rows } = await sql<{ n: string }>`select count(*) as n from audit_events`.execute(t.db);
    expect(rows[0]!.n).toBe('1');
  });

  it('lets retention delete only inside a transaction that opened the door with set local', async () => {
    // Outside a transaction `set local` has no effect, so the door stays shut.
    await sql`set local tessera.audit_retention = 'on'`.execute(t.db);
    await expect(sql`delete from audit_events`.execute(t.db)).rejects.toThrow(/refused/);
    await t.db.transaction().execute(async (trx) => {
      await sql`set local tessera.audit_retention = 'on'`.execute(trx);
      // Even with the door open, retention may delete but never rewrite.
      await expect(sql`update audit_events set actor = 'x'`.execute(trx)).rejects.toThrow(/refused/);
    });
    await t.db.transaction().execute(async (trx) => {
      await sql`set local tessera.audit_retention = 'on'`.execute(trx);
      await sql`delete from audit_events where seq = 1`.execute(trx);
    });
    const { rows } = await sql<{ n: string }>`select count(*) as n from audit_events`.execute(t.db);
    expect(rows[0]!.n).toBe('0');
  });

  it('guards the anchor: never deleted, moved only by retention', async () => {
    await expect(sql`update audit_anchor set seq = 5`.execute(t.db)).rejects.toThrow(/UPDATE on audit_anchor refused/);
    await expect(sql`delete from audit_anchor`.execute(t.db)).rejects.toThrow(/refused/);
    await expect(sql`truncate audit_anchor`.execute(t.db)).rejects.toThrow(/refused/);
    const anchor = await t.db.selectFrom('audit_anchor').selectAll().executeTakeFirstOrThrow();
    expect(anchor).toMatchObject({ seq: '0', hash: '0'.repeat(64) });
  });
});
