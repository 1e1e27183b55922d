import { sql } from 'kysely';
import { expireGrants } from '../../src/grants/expire-grants.job.js';
import type { Database } from '../../src/db/database.js';
import { sealAll } from '../lib/seal.js';
import { systemClock } from '../../src/lib/clock.js';
import { msSince } from '../lib/stats.js';
import { BENCH_AUDIENCE, BENCH_TASK, CI_WORKLOAD } from '../lib/identities.js';

/**
 * The real expiry job (src/grants/expire-grants.job.ts): each batch ends grants with SKIP LOCKED and
 * records one CAEP event, one webhook delivery per subscriber and one audit event per grant in the
 * same transaction. The bench times it at several batch sizes.
 */
async function sweep(db: Database, now: Date, batch: number): Promise<{ expired: number; statements: number }> {
  const { processed } = await expireGrants({ db, clock: systemClock }, now, batch);
  return { expired: processed, statements: Math.ceil(processed / batch) + 1 };
}

/** Rows per seeding statement: each stays well inside the pool's statement timeout on a loaded machine. */
const SEED_CHUNK = 10_000;

/** Inserts `count` active grants that expired over the last hour, in chunks. */
export async function seedExpiredGrants(db: Database, count: number, now: Date): Promise<void> {
  for (let from = 1; from <= count; from += SEED_CHUNK) {
    const to = Math.min(count, from + SEED_CHUNK - 1);
    await sql`
      insert into grants (id, workload_id, task, params, scopes, audience, issued_at, expires_at, status, kid, token_sha256, identity)
      select gen_random_uuid(), ${CI_WORKLOAD}, ${BENCH_TASK}, '{"service":"api"}'::jsonb, array['deploy:write'], ${BENCH_AUDIENCE},
        ${now}::timestamptz - interval '2 hours', ${now}::timestamptz - (g * interval '1 millisecond') * (3600000.0 / ${count}),
        'active', 'bench-kid', md5(g::text), '{"method":"oidc"}'::jsonb
      from generate_series(${from}::int, ${to}::int) g`.execute(db);
  }
  await sql`analyze grants`.execute(db);
}

export interface SweepResult {
  batch: number;
  expired: number;
  statements: number;
  seconds: number;
  rowsPerSecond: number;
  /** Chaining the sweep's audit events (one per grant) into the hash chain, which the sealer does after. */
  sealSeconds: number;
  sealed: number;
}

/**
 * Seeds `count` expired grants and times one full sweep of them at each batch size. The sweep runs as
 * the broker's role (`db`); seeding and ANALYZE need the table's owner or a superuser (`seed`).
 */
export async function benchExpirySweep(db: Database, seed: Database, count: number, batches: number[]): Promise<SweepResult[]> {
  const results: SweepResult[] = [];
  for (const batch of batches) {
    const now = new Date();
    await seedExpiredGrants(seed, count, now);
    const started = process.hrtime.bigint();
    const { expired, statements } = await sweep(db, now, batch);
    const seconds = msSince(started) / 1000;
    if (expired < count) throw new Error(`sweep expired ${expired} of ${count} grants`);
    const sealStarted = process.hrtime.bigint();
    const sealed = await sealAll(db);
    const sealSeconds = msSince(sealStarted) / 1000;
    results.push({ batch, expired, statements, seconds, rowsPerSecond: expired / seconds, sealSeconds, sealed });
  }
  return results;
}
