import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { KeyStatus } from './key.table.js';
import { recordAudit } from '../audit/audit-outbox.js';

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

/** Inserts a new key in `status` (and audits it); `current` fails on the one-current unique index if another replica won. */
export async function insertKey(
  db: Database,
  key: { kid: string; public_jwk: Record<string, unknown>; private_key_enc: string; status: KeyStatus },
  by: KeyChange,
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
  await auditKeyState(db, key.kid, key.status, by, now);
}

/** Runs `fn` holding the key-management advisory lock, so replicas never race to create or rotate keys. */
export async function withKeyLock<T>(db: Database, fn: (trx: Database) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('tessera:signing-keys'))`.execute(trx);
    return fn(trx);
  });
}

/** Every key in a state that matters to rotation, locked for the caller's transaction. */
export async function listKeysForUpdate(trx: Database): Promise<Array<StoredKey & { created_at: Date; activated_at: Date | null }>> {
  return trx
    .selectFrom('signing_keys')
    .select(['kid', 'status', 'public_jwk', 'private_key_enc', 'publish_until', 'created_at', 'activated_at'])
    .where('status', 'in', ['next', 'current', 'retired'])
    .orderBy('created_at')
    .forUpdate()
    .execute();
}

/** Who changed a key's state and why, for its audit event. */
export interface KeyChange {
  actor: string;
  reason: string;
}

/**
 * Stages the audit event of a key entering `status`, in the transaction that changed it: rotations and
 * emergency revocations are security events of their own, whoever asked for them.
 */
export async function auditKeyState(trx: Database, kid: string, status: KeyStatus, by: KeyChange, now: Date, data: Record<string, unknown> = {}): Promise<void> {
  await recordAudit(trx, { actor: by.actor, action: `signing_key.${status}`, outcome: 'success', target_type: 'signing_key', target_id: kid, data: { reason: by.reason, ...data } }, now);
}

/** Moves a key to a new state (and audits it); `retired` and `revoked` are only reached from `next`/`current`. */
export async function setKeyStatus(
  trx: Database,
  kid: string,
  change: { status: 'current' } | { status: 'retired'; publishUntil: Date } | { status: 'revoked' },
  by: KeyChange,
  now: Date,
): Promise<void> {
  const set =
    change.status === 'current'
      ? { status: 'current' as const, activated_at: now }
      : change.status === 'retired'
        ? { status: 'retired' as const, retired_at: now, publish_until: change.publishUntil }
        : { status: 'revoked' as const, retired_at: now, publish_until: null };
  await trx.updateTable('signing_keys').set(set).where('kid', '=', kid).execute();
  await auditKeyState(trx, kid, change.status, by, now, change.status === 'retired' ? { publish_until: change.publishUntil.toISOString() } : {});
}

/**
 * Keeps each retired key in JWKS until `grace` after the last token it signed expires: a replica that
 * had not reloaded its keys yet may have signed with it after it was retired.
 */
export async function extendRetiredKeys(trx: Database, graceSeconds: number): Promise<void> {
  await sql`
    update signing_keys k set publish_until = greatest(k.publish_until,
      (select max(g.expires_at) from grants g where g.kid = k.kid) + make_interval(secs => ${graceSeconds}))
    where k.status = 'retired'`.execute(trx);
}

/** The latest `exp` among the grants a key signed, or undefined. */
export async function lastExpiryOfKey(trx: Database, kid: string): Promise<Date | undefined> {
  const r = await trx.selectFrom('grants').select((eb) => eb.fn.max('expires_at').as('last')).where('kid', '=', kid).executeTakeFirst();
  return r?.last ?? undefined;
}
