// npm run bench:ids: what the order of row ids costs a Postgres insert once its indexes are large.
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { createDatabase } from '../src/db/database.js';
import { startScratchPostgres } from './lib/postgres.js';
import { describeError } from './lib/describe-error.js';

const USAGE = `Usage: npm run bench:ids -- [--rows <n>] [--inserts <n>]

Fills two tables of --rows rows each (default 3,000,000), one keyed by random UUIDv4 ids and one by
time-ordered UUIDv7 ids, each with two uuid indexes (grants, decisions and audit_events have one
each). Then, right after a checkpoint, inserts --inserts statements of 13 rows into each (default
4,000, a mint turn's size), twice, and prints the time and the WAL each took. Postgres makes the ids
(gen_random_uuid(), uuidv7()). Its v7 ids fill the bits after the milliseconds with a finer time
where the broker's timeOrderedId has random bits; both land on an index's newest pages. Takes about
2 minutes.`;

const ROWS_PER_INSERT = 13;
/** Filling 3,000,000 rows takes about a minute here: far past the broker's 5 s statement timeout. */
const FILL_TIMEOUT_MS = 30 * 60_000;

const log = (msg: string) => process.stderr.write(`[ids ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rows: { type: 'string', default: '3000000' }, inserts: { type: 'string', default: '4000' }, help: { type: 'boolean' } } });
  if (values.help) return void console.log(USAGE);
  const rows = Number(values.rows);
  const inserts = Number(values.inserts);
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(inserts) || inserts < 1) throw new Error(`--rows and --inserts must be whole numbers (got ${values.rows}, ${values.inserts})\n\n${USAGE}`);

  log('starting Postgres');
  const pg = await startScratchPostgres('ids');
  const { db } = createDatabase({ url: pg.url, statementTimeoutMs: FILL_TIMEOUT_MS });
  const kinds = { v4: 'gen_random_uuid()', v7: 'uuidv7()' } as const;
  try {
    for (const [kind, fn] of Object.entries(kinds)) {
      const started = performance.now();
      await sql.raw(`create table ids_${kind} (id uuid primary key, other uuid unique, note text, data jsonb)`).execute(db);
      await sql.raw(`insert into ids_${kind} select ${fn}, ${fn}, 'x', '{"a":1}' from generate_series(1, ${rows})`).execute(db);
      log(`${kind}: ${rows.toLocaleString('en-US')} rows filled in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    const results: Array<{ round: number; kind: string; seconds: number; walMegabytes: number }> = [];
    for (const round of [1, 2]) {
      for (const [kind, fn] of Object.entries(kinds)) {
        // Right after a checkpoint: the first change to each page writes the whole page to the WAL.
        await sql`checkpoint`.execute(db);
        const { rows: [from] } = await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`.execute(db);
        const started = performance.now();
        for (let i = 0; i < inserts; i++) await sql.raw(`insert into ids_${kind} select ${fn}, ${fn}, 'x', '{"a":1}' from generate_series(1, ${ROWS_PER_INSERT})`).execute(db);
        const seconds = (performance.now() - started) / 1000;
        const { rows: [wal] } = await sql<{ bytes: string }>`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${from!.lsn}::pg_lsn)::text as bytes`.execute(db);
        results.push({ round, kind, seconds, walMegabytes: Number(wal!.bytes) / 1e6 });
        log(`round ${round} ${kind}: ${(inserts * ROWS_PER_INSERT).toLocaleString('en-US')} rows in ${seconds.toFixed(2)} s, ${(Number(wal!.bytes) / 1e6).toFixed(0)} MB of WAL`);
      }
    }
    console.log(JSON.stringify({ rows, inserts, rowsPerInsert: ROWS_PER_INSERT, results }, null, 2));
  } finally {
    await db.destroy();
    await pg.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(`bench:ids failed: ${describeError(err)}`);
  process.exit(1);
});
