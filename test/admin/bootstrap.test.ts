import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnv } from '../../src/config/env.js';
import { Kek } from '../../src/keys/kek.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { adminCall } from './support.js';

/** A key as the README says to make one (openssl rand -base64 32, made URL-safe, prefixed). */
const envKey = () => `tsk_${randomBytes(32).toString('base64url')}`;

let database: TestDatabase;
/** One KEK across restarts, as one deployment has: the signing keys sealed by the first start must open. */
const kek = new Kek(randomBytes(32));
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());

/** A broker on the shared database, started with TESSERA_BOOTSTRAP_ADMIN_KEY as main reads it. */
async function brokerWithEnvKey(key: string): Promise<TestBroker> {
  const env = parseEnv({ TESSERA_BOOTSTRAP_ADMIN_KEY: key });
  return startTestBroker({}, { database, kek, bootstrapAdminKey: env.TESSERA_BOOTSTRAP_ADMIN_KEY, scheduler: false });
}

describe('bootstrap admin key from the environment', () => {
  it('refuses at start-up a key the admin API could never accept, saying how to make one', () => {
    for (const bad of ['x'.repeat(40), 'tsk_short', `TSK_${randomBytes(32).toString('base64url')}`, `tsk_${'a'.repeat(40)} `]) {
      expect(() => parseEnv({ TESSERA_BOOTSTRAP_ADMIN_KEY: bad })).toThrow(/TESSERA_BOOTSTRAP_ADMIN_KEY: must be "tsk_".*openssl rand -base64 32/);
    }
  });

  it('works from the first start; changing the variable revokes the old key; restarting adds nothing', async () => {
    const first = envKey();
    let broker = await brokerWithEnvKey(first);
    expect((await adminCall(broker, 'get', '/keys', first)).status).toBe(200);
    await broker.stop();

    const second = envKey();
    broker = await brokerWithEnvKey(second);
    expect((await adminCall(broker, 'get', '/keys', first)).status).toBe(401);
    const keys = await adminCall(broker, 'get', '/keys', second);
    expect(keys.status).toBe(200);
    const bootstrap = (keys.body.items as Array<{ name: string; status: string; created_by: string }>).filter((k) => k.created_by === 'system:bootstrap');
    expect(bootstrap.map((k) => k.status).sort()).toEqual(['active', 'revoked']);
    await broker.stop();

    broker = await brokerWithEnvKey(second);
    try {
      const again = await adminCall(broker, 'get', '/keys', second);
      expect(again.body.items).toHaveLength(bootstrap.length);
      await broker.deps.audit.flush();
      const events = await adminCall(broker, 'get', '/audit/events?target_type=admin_key', second);
      expect((events.body.items as Array<{ action: string; actor: string }>).map((e) => `${e.actor} ${e.action}`)).toEqual([
        'system:bootstrap admin_key.create',
        'system:bootstrap admin_key.revoke',
        'system:bootstrap admin_key.create',
      ]);
    } finally {
      await broker.stop();
    }
  });
});
