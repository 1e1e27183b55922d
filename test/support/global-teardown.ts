import { rm } from 'node:fs/promises';
import pg from 'pg';
import { createDatabase } from '../../src/db/database.js';
import { keptFindings, runPaths, scanDatabase, scanLogs, type Finding } from './secret-scan.js';
import { withDatabase } from './global-setup.js';

/** Test databases are named `t_<uuid>` (support/database.ts); any still there at the end is scanned here. */
const TEST_DB = /^t_[0-9a-f]{32}$/;

/**
 * After the whole suite: no JWT, PEM block or broker secret in any test database (each scanned as it
 * was dropped, plus any left over) or in any line a broker logged. Throws, failing the run, with each
 * table, column and row (or log file and line) where one was found; removes the run folder when clean.
 */
export async function scanRunForSecrets(adminUrl: string, runDir: string): Promise<void> {
  const findings: Finding[] = [...(await keptFindings(runDir)), ...(await scanLogs(runPaths(runDir).logs))];
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ name: string }>('select datname as name from pg_database order by 1');
    for (const { name } of rows.filter((r) => TEST_DB.test(r.name))) {
      const { db } = createDatabase({ url: withDatabase(adminUrl, name) });
      try {
        findings.push(...(await scanDatabase(db, name)));
      } finally {
        await db.destroy();
      }
      await admin.query(`drop database if exists ${name} with (force)`);
    }
  } finally {
    await admin.end();
  }
  if (findings.length) {
    // vitest reports an error thrown here but still exits 0 when every test passed: set the code too.
    process.exitCode = 1;
    throw new Error(`secret shapes found after the suite (kept in ${runDir}):\n${findings.map((f) => `  ${f.rule}: ${f.where}`).join('\n')}`);
  }
  await rm(runDir, { recursive: true, force: true });
}
