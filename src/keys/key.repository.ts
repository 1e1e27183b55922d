import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { KeyStatus } from './key.table.js';

export interface StoredKey {
  kid: string;
  status: KeyStatus;
  public_jwk: Record<string, unknown>;
  private_key_enc: string;
  publish_until: Date | null;
}

/** Keys that belong in JWKS at `now`: next, current, and retired ones whose tokens may still be live. */
export async function listPublishedKeys(db: Database, now: Date): Promise<StoredKey[]> {
  return db
    .selectFrom('signing_keys')
    .select(['kid', 'status', 'public_jwk', 'private_key_enc', 'publish_until'])
    .where((eb) =>
      eb.or([
        eb('status', 'in', ['next', 'current']),
        eb.and([eb('status', '=', 'retired'), eb('publish_until', '>', now)]),
      ]),
    )
    .orderBy('created_at')
    .execute();
}

/** Inserts a new key in `status`; `current` fails on the one-current unique index if another replica won. */
export async function insertKey(
  db: Database,
  key: { kid: string; public_jwk: Record<string, unknown>; private_key_enc: string; status: KeyStatus },
  now: Date,
): Promise<void> {
  await db
    .insertInto('signing_keys')
    .values({
      kid: key.kid,
      alg: 'ES256',
      public_jwk: JSON.stringify(key.public_jwk),
      private_key_enc: key.private_key_enc,
      status: key.status,
      created_at: now,
      activated_at: key.status === 'current' ? now : null,
    })
    .execute();
}

/** Runs `fn` holding the key-management advisory lock, so replicas never race to create or rotate keys. */
export async function withKeyLock<T>(db: Database, fn: (trx: Database) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('tessera:signing-keys'))`.execute(trx);
    return fn(trx);
  });
}
