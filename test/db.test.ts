import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
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
});
