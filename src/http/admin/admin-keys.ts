import { sql } from 'kysely';
import { z } from 'zod';
import type { Database } from '../../db/database.js';
import { sha256Hex } from '../../lib/hash.js';
import { newId, randomSecret } from '../../lib/ids.js';
import type { AdminRole } from './admin.table.js';
import { recordAudit } from '../../audit/audit-outbox.js';

/** Admin API keys carry a prefix so secret scanners and people recognise them. */
export const ADMIN_KEY_PREFIX = 'tsk_';

/** Roles in increasing power; each includes the ones before it. */
export const ROLES: readonly AdminRole[] = ['viewer', 'approver', 'operator', 'admin'];

/** A role named in a request or a configuration. */
export const roleSchema = z.enum(ROLES as readonly [AdminRole, ...AdminRole[]]);

export const roleAtLeast = (have: AdminRole, need: AdminRole) => ROLES.indexOf(have) >= ROLES.indexOf(need);

/** Who makes an admin request: a key's holder, or a person signed in at a trusted admin IdP. */
export interface AdminPrincipal {
  id: string;
  /** What audit events and changed rows name the actor by: `admin:<name>`. */
  name: string;
  role: AdminRole;
  /** The person behind the credential: whom self-approval rules compare, and who votes once. */
  person: string;
}

/** A new random admin key; only its SHA-256 is stored. */
export const newAdminKey = () => `${ADMIN_KEY_PREFIX}${randomSecret(32)}`;

/**
 * The admin a key belongs to, or undefined. Keys are looked up by their SHA-256 (unique index), so the
 * comparison never touches the secret itself and takes the same time whichever byte differs.
 */
export async function findAdminByKey(db: Database, key: string, now: Date): Promise<AdminPrincipal | undefined> {
  if (!key.startsWith(ADMIN_KEY_PREFIX)) return undefined;
  return db
    .selectFrom('admin_keys')
    .select(['id', 'name', 'role', 'person'])
    .where('key_sha256', '=', sha256Hex(key))
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .executeTakeFirst();
}

/** Creates an admin key and returns the secret, which is shown once and never stored. */
export async function createAdminKey(
  db: Database,
  input: { name: string; role: AdminRole; createdBy: string; person?: string | undefined; expiresAt?: Date | null },
  now: Date,
): Promise<{ id: string; key: string }> {
  const key = newAdminKey();
  const id = newId();
  await db
    .insertInto('admin_keys')
    .values({ id, name: input.name, person: input.person ?? input.name, role: input.role, key_sha256: sha256Hex(key), created_by: input.createdBy, created_at: now, expires_at: input.expiresAt ?? null })
    .execute();
  return { id, key };
}

/** Who created (and replaces) the bootstrap key; the name it is listed under. */
const BOOTSTRAP_ACTOR = 'system:bootstrap';
const BOOTSTRAP_NAME = 'bootstrap';

/**
 * Makes sure the bootstrap key (from the environment or demo mode) is a valid admin key, and that it is
 * the only one: changing the variable is how an operator rotates it, so a bootstrap key with another hash
 * is revoked. A bootstrap key an admin revoked stays revoked (the insert does nothing for a known hash).
 */
export async function ensureBootstrapAdminKey(db: Database, key: string, now: Date): Promise<void> {
  const hash = sha256Hex(key);
  await db.transaction().execute(async (trx) => {
    // Two replicas starting with different keys must not both keep theirs.
    await lockKeyName(trx, BOOTSTRAP_NAME);
    const replaced = await trx
      .updateTable('admin_keys')
      .set({ revoked_at: now })
      .where('created_by', '=', BOOTSTRAP_ACTOR)
      .where('key_sha256', '<>', hash)
      .where('revoked_at', 'is', null)
      .returning(['id', 'name'])
      .execute();
    const created = await trx
      .insertInto('admin_keys')
      .values({ id: newId(), name: BOOTSTRAP_NAME, person: BOOTSTRAP_NAME, role: 'admin', key_sha256: hash, created_by: BOOTSTRAP_ACTOR, created_at: now })
      .onConflict((oc) => oc.column('key_sha256').doNothing())
      .returning(['id'])
      .executeTakeFirst();
    const events = [
      ...replaced.map((k) => ({ action: 'admin_key.revoke', target_id: k.id, data: { name: k.name, reason: 'bootstrap key replaced' } })),
      ...(created ? [{ action: 'admin_key.create', target_id: created.id, data: { name: BOOTSTRAP_NAME, role: 'admin' } }] : []),
    ];
    await recordAudit(trx, events.map((e) => ({ ...e, actor: BOOTSTRAP_ACTOR, outcome: 'success', target_type: 'admin_key' })), now);
  });
}

/** An admin key as listed: everything but its hash. */
export interface AdminKeyInfo {
  id: string;
  name: string;
  person: string;
  role: AdminRole;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

const KEY_INFO = ['id', 'name', 'person', 'role', 'created_by', 'created_at', 'expires_at', 'revoked_at'] as const;

/** Every admin key, oldest first, without hashes. */
export async function listAdminKeys(db: Database): Promise<AdminKeyInfo[]> {
  return db.selectFrom('admin_keys').select(KEY_INFO).orderBy('created_at').orderBy('id').execute();
}

/** One admin key by id, without its hash. */
export async function findAdminKey(db: Database, id: string): Promise<AdminKeyInfo | undefined> {
  return db.selectFrom('admin_keys').select(KEY_INFO).where('id', '=', id).executeTakeFirst();
}

/**
 * True when a usable (unrevoked, unexpired) key already has this name. Admin actions are attributed to
 * `admin:<name>`, so two usable keys must never share one. Serialised per name by an advisory lock.
 */
export async function usableKeyNamed(trx: Database, name: string, now: Date): Promise<boolean> {
  await lockKeyName(trx, name);
  const row = await trx
    .selectFrom('admin_keys')
    .select('id')
    .where('name', '=', name)
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .executeTakeFirst();
  return row !== undefined;
}

/** Serialises writers of keys named `name` until `trx` ends. */
async function lockKeyName(trx: Database, name: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${`tessera:admin-key:${name}`}))`.execute(trx);
}

/** Revokes a key from now on; returns it, or undefined when it was missing or already revoked. */
export async function revokeAdminKey(trx: Database, id: string, now: Date): Promise<AdminKeyInfo | undefined> {
  return trx.updateTable('admin_keys').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).returning(KEY_INFO).executeTakeFirst();
}
