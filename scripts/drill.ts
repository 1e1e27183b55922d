// npm run drill [-- name...]: fault drills against real broker processes and a real Postgres; pass/fail with figures.
import { describeError } from './lib/describe-error.js';
import { wantsHelp } from '../src/config/env.js';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createDatabase } from '../src/db/database.js';
import { REPO_ROOT } from './lib/broker-process.js';
import { benchAgent, startBenchIssuer, writeBenchConfig } from './lib/identities.js';
import { startScratchPostgres } from './lib/postgres.js';
import type { Drill, DrillContext, DrillResult } from './drill/drill.js';
import { concurrentRevokes } from './drill/concurrent-revokes.js';
import { malformedInput } from './drill/malformed.js';
import { brokerKilled } from './drill/broker-killed.js';
import { postgresStopped } from './drill/postgres-stopped.js';
import { postgresFrozen } from './drill/postgres-frozen.js';

/** In this order: the drills that stop or freeze Postgres come last. */
const DRILLS: Record<string, Drill> = {
  revokes: concurrentRevokes,
  malformed: malformedInput,
  sigkill: brokerKilled,
  'pg-stop': postgresStopped,
  'pg-freeze': postgresFrozen,
};
/** One drill may not run longer than this (the freeze drill needs 30 s plus recovery). */
const DRILL_TIMEOUT_MS = 90_000;

const log = (msg: string) => process.stderr.write(`[drill ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

const USAGE = `Usage: npm run drill [-- <drill>...]

Fault drills against real broker processes and a real Postgres, each printed PASS/FAIL with its
figures (about 3 minutes for all; progress on stderr; results in bench-results/drill-<time>.json):
  revokes    100 concurrent revokes of one grant: one final state, one event
  malformed  10,000 malformed bodies and headers: only 4xx, no crash, bounded memory
  sigkill    the broker killed with SIGKILL during 1,000 concurrent mints: every token has its row
  pg-stop    Postgres stopped mid-load: 503 within 2 s, no token without a row, recovery, no restart
  pg-freeze  Postgres frozen (SIGSTOP) for 30 s: no request past its timeout, recovery after thaw
Without names, all run in this order. Exits 1 if any drill fails.`;

async function main(): Promise<number> {
  const selected = process.argv.slice(2).filter((a) => a !== '--');
  if (wantsHelp(selected)) {
    console.log(USAGE);
    return 0;
  }
  const unknown = selected.filter((s) => !(s in DRILLS));
  if (unknown.length) {
    console.error(`drill: unknown drill(s) ${unknown.join(', ')}\n\n${USAGE}`);
    return 2;
  }
  const names = selected.length ? selected : Object.keys(DRILLS);

  log('starting Postgres and the CI issuer');
  const pg = await startScratchPostgres('drill');
  const issuer = await startBenchIssuer();
  const agent = benchAgent();
  const configDir = await writeBenchConfig(path.join(pg.dir, 'config'), issuer, agent);
  // The drills' own checks read as the superuser; every broker migrates (as the owner) and applies the
  // configuration at start, as in production.
  const { db } = createDatabase({ url: pg.url });
  const ctx: DrillContext = { pg, db, issuer, agent, configDir, kek: randomBytes(32).toString('base64url'), log };
  const results: DrillResult[] = [];
  try {
    for (const name of names) {
      log(`drill ${name}`);
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        DRILLS[name]!(ctx),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`drill ${name} exceeded ${DRILL_TIMEOUT_MS} ms`)), DRILL_TIMEOUT_MS))),
      ]).catch((err: Error): DrillResult => ({ name, pass: false, checks: [{ check: `ran to completion: ${err.message}`, pass: false }], figures: {} }));
      clearTimeout(timer);
      result.figures.seconds = Math.round((Date.now() - started) / 100) / 10;
      results.push(result);
      print(result);
    }
  } finally {
    await db.destroy().catch(() => {});
    await issuer.close().catch(() => {});
    await pg.destroy();
  }
  const passed = results.filter((r) => r.pass).length;
  console.log(`\n${passed}/${results.length} drills passed`);
  const outDir = path.join(REPO_ROOT, 'bench-results');
  await mkdir(outDir, { recursive: true });
  const file = path.join(outDir, `drill-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify(results, null, 2));
  console.log(`Results: ${path.relative(REPO_ROOT, file)}`);
  return passed === results.length ? 0 : 1;
}

function print(r: DrillResult): void {
  console.log(`\n${r.pass ? 'PASS' : 'FAIL'}  ${r.name}`);
  for (const c of r.checks) console.log(`  ${c.pass ? 'ok  ' : 'FAIL'}  ${c.check}`);
  for (const [k, v] of Object.entries(r.figures)) console.log(`        ${k}: ${typeof v === 'object' ? JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isInteger(x) ? Math.round(x * 10) / 10 : x)) : v}`);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`drill failed: ${describeError(err)}`);
    process.exit(1);
  },
);
