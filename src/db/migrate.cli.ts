import path from 'node:path';
import { environmentHelp, parseEnv, wantsHelp } from '../config/env.js';
import { createLogger } from '../lib/logger.js';
import { createDatabase } from './database.js';
import { startEmbeddedPostgres } from './embedded.js';
import { prepareDatabase } from './prepare.js';

// `npm run migrate`: applies pending migrations as DATABASE_OWNER_URL (the schema owner) and grants the
// role of DATABASE_URL what the broker needs; with DATABASE_URL alone it migrates as that role (and
// warns that append-only is then advisory); without either, the embedded Postgres under the data dir.
if (wantsHelp(process.argv.slice(2))) {
  console.log(`Usage: npm run migrate

Applies pending migrations as DATABASE_OWNER_URL (the schema owner) and grants DATABASE_URL's role what
the broker needs. With DATABASE_URL alone it migrates as that role (append-only is then advisory);
without either, the embedded Postgres under TESSERA_DATA_DIR. Prints what it applied.

${environmentHelp()}`);
  process.exit(0);
}
const env = parseEnv(process.env);
const log = createLogger(env.LOG_LEVEL);
const embedded = env.DATABASE_URL ? undefined : await startEmbeddedPostgres({ dir: path.resolve(env.TESSERA_DATA_DIR), port: env.TESSERA_EMBEDDED_PG_PORT });
const url = env.DATABASE_URL ?? embedded!.brokerUrl;
const { db } = createDatabase({ url });
try {
  const { applied, appendOnly } = await prepareDatabase({ db, ownerUrl: env.DATABASE_OWNER_URL ?? embedded?.ownerUrl, url, log });
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
  console.log(`audit log append-only: ${appendOnly}`);
} finally {
  await db.destroy();
  await embedded?.stop();
}
