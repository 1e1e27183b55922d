import { randomBytes } from 'node:crypto';
import { sql, type KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kek } from '../../src/keys/kek.js';
import { KeyStore } from '../../src/keys/keystore.js';
import { ManualClock } from '../../src/lib/clock.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let t: TestDatabase;
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
  let release!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const held = new Promise<void>((r) => (reached = r));
  const plugin: KyselyPlugin = {
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      if (armed) {
        armed = false;
        reached();
        await gate;
      }
      return args.result;
    },
  };
  return { plugin, arm: () => (armed = true), held, release };
}

describe('KeyStore.refresh', () => {
  it('never applies a reload that read the keys before a revocation after the reload that read them after it', async () => {
    const hold = holdNextResult();
    const keys = new KeyStore(t.db.withPlugin(hold.plugin), new Kek(randomBytes(32)), new ManualClock());
    await keys.init();
    const revokedKid = keys.currentKid;

    // The periodic reload reads the keys, and its answer is held before it is applied.
    hold.arm();
    const periodic = keys.refresh();
    await hold.held;
    // Meanwhile an admin revokes the current key on this replica.
    const revoking = keys.revoke(revokedKid, { actor: 'admin:test', reason: 'compromised' }, new Date());
    for (let i = 0; i < 200; i++) {
      const { rows } = await sql<{ status: string }>`select status from signing_keys where kid = ${revokedKid}`.execute(t.db);
      if (rows[0]?.status === 'revoked') break;
      await new Promise((r) => setTimeout(r, 10));
    }
    hold.release();
    await Promise.all([periodic, revoking]);

    expect(keys.currentKid).not.toBe(revokedKid);
    expect(keys.jwks().keys.map((k) => k.kid)).not.toContain(revokedKid);
  });
});
