import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createDatabase, type Database } from '../../src/db/database.js';
import { OWNER_ROLE } from '../../src/db/roles.js';
import { TEMPLATE_DB, withDatabase } from './global-setup.js';
import { keepFindings, scanDatabase } from './secret-scan.js';

export interface TestDatabase {
  /** The broker's restricted role: what a broker under test connects as. */
  url: string;
  /** The schema owner (absent for a database with a single role, e.g. a file's own cluster). */
  ownerUrl?: string;
  /** As the owner: for setting up and inspecting state (it bypasses grants, not the audit triggers). */
  db: Database;
  drop(): Promise<void>;
}

/** A fresh, migrated database of its own (cloned from the template), on the run's real Postgres. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject('adminDatabaseUrl');
  const name = `t_${randomUUID().replace(/-/g, '')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name} owner ${OWNER_ROLE} template ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  const ownerUrl = withDatabase(inject('ownerDatabaseUrl'), name);
  const { db } = createDatabase({ url: ownerUrl });
  return {
    url: withDatabase(inject('brokerDatabaseUrl'), name),
    ownerUrl,
    db,
    async drop() {
      // Scanned as it goes, so the suite's teardown can tell whether any database ever held a secret.
      await keepFindings(inject('testRunDir'), name, await scanDatabase(db, name));
      await db.destroy();
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}
