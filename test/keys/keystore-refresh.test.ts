import { randomBytes } from 'node:crypto';
import { sql, type KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kek } from '../../src/keys/kek.js';
import { KeyStore } from '../../src/keys/keystore.js';
import { ManualClock } from '../../src/lib/clock.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let t: TestDatabase;
/** One key-encryption key for the database's keys, as all replicas of a deployment share it. */
const kek = new Kek(randomBytes(32));
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

/**
 * Holds the result of the next query, once armed, until released: a reload whose read of the keys
 * was answered by Postgres but has not reached the key store yet, as a slow event loop or a pool
 * wait leaves it.
 */
function holdNextResult() {
  let armed = false;
  let results = 0;
  let release!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const held = new Promise<void>((r) => (reached = r));
  const plugin: KyselyPlugin = {
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      results++;
      if (armed) {
        armed = false;
        reached();
        await gate;
      }
      return args.result;
    },
  };
  return { plugin, arm: () => (armed = true), held, release, results: () => results };
}

describe('KeyStore.refresh', () => {
  it('never applies a reload that read the keys before a revocation after the reload that read them after it', async () => {
    const hold = holdNextResult();
    const keys = new KeyStore(t.db.withPlugin(hold.plugin), kek, new ManualClock());
    await keys.init();
    const revokedKid = keys.currentKid;

    // The periodic reload reads the keys, and its answer is held before it is applied.
    hold.arm();
    const periodic = keys.refresh();
    await hold.held;
    // Meanwhile an admin revokes the current key on this replica.
    const revoking = keys.revoke(revokedKid, { actor: 'admin:test', reason: 'compromised' }, new Date());
    let status: string | undefined;
    for (let i = 0; i < 500 && status !== 'revoked'; i++) {
      if (i) await new Promise((r) => setTimeout(r, 10));
      status = (await sql<{ status: string }>`select status from signing_keys where kid = ${revokedKid}`.execute(t.db)).rows[0]?.status;
    }
    expect(status).toBe('revoked');
    hold.release();
    await Promise.all([periodic, revoking]);

    expect(keys.currentKid).not.toBe(revokedKid);
    expect(keys.jwks().keys.map((k) => k.kid)).not.toContain(revokedKid);
  });

  it('gives the callers that arrive while a reload waits its turn one reload between them', async () => {
    const hold = holdNextResult();
    const keys = new KeyStore(t.db.withPlugin(hold.plugin), kek, new ManualClock());
    await keys.init();
    hold.arm();
    const running = keys.refresh();
    await hold.held;
    const before = hold.results();
    // A burst of mints refused with key_revoked, all asking for a reload while one is running.
    const waiting = Array.from({ length: 50 }, () => keys.refresh());
    expect(new Set(waiting).size).toBe(1);
    hold.release();
    await Promise.all([running, ...waiting]);
    expect(hold.results() - before).toBe(1); // after the held one, one shared reload
    // A call after that reload began waits for a reload of its own.
    await keys.refresh();
    expect(hold.results() - before).toBe(2);
  });
});
