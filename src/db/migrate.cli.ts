import path from 'node:path';
import { parseEnv } from '../config/env.js';
import { createDatabase } from './database.js';
import { startEmbeddedPostgres } from './embedded.js';
import { migrateToLatest } from './migrator.js';

// `npm run migrate`: applies pending migrations to DATABASE_URL, or to the embedded Postgres under the data dir.
const env = parseEnv(process.env);
const embedded = env.DATABASE_URL ? undefined : await startEmbeddedPostgres({ dir: path.resolve(env.TESSERA_DATA_DIR), port: env.TESSERA_EMBEDDED_PG_PORT });
const { db } = createDatabase({ url: env.DATABASE_URL ?? embedded!.url });
try {
  const applied = await migrateToLatest(db);
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
} finally {
  await db.destroy();
  await embedded?.stop();
}
