import { sql } from 'kysely';
import type { Logger } from 'pino';
import { createDatabase, type Database } from './database.js';
import { migrateToLatest } from './migrator.js';
import { grantBrokerPrivileges } from './privileges.js';

export interface PrepareOptions {
  /** The broker's own pool: its role is the one granted and checked. */
  db: Database;
  /** The schema owner's URL. Without it the broker's own role migrates (the single-URL setup). */
  ownerUrl?: string | undefined;
  /** The broker's own URL: the single-URL setup migrates over a pool of its own with migration timeouts. */
  url?: string | undefined;
  log: Logger;
}

export interface Prepared {
  applied: string[];
  /** `enforced` when the broker's role cannot change or delete audit rows; `advisory` when only a trigger it could disable stands in the way. */
  appendOnly: 'enforced' | 'advisory';
}

const currentUser = async (db: Database) => (await sql<{ u: string }>`select current_user as u`.execute(db)).rows[0]!.u;

/**
 * Migrations run over a pool of their own: the request path's 5 s statement timeout would fail an
 * index build on a large table, and since migrations run at start-up the broker would never start.
 * A lock wait stays short instead, because a migration queued for a table's exclusive lock holds up
 * every request behind it: it fails, and the next start tries again.
 */
export const migrationPool = (url: string) => createDatabase({ url, maxConnections: 2, statementTimeoutMs: 30 * 60_000, lockTimeoutMs: 5_000 });

async function migrateAsOwner(ownerUrl: string, broker: Database): Promise<string[]> {
  const owner = migrationPool(ownerUrl);
  try {
    const applied = await migrateToLatest(owner.db);
    const brokerRole = await currentUser(broker);
    if (brokerRole !== (await currentUser(owner.db))) await grantBrokerPrivileges(owner.db, brokerRole);
    return applied;
  } finally {
    await owner.db.destroy();
  }
}

async function migrateAsBroker(db: Database, url: string | undefined): Promise<string[]> {
  const own = url ? migrationPool(url) : undefined;
  try {
    return await migrateToLatest(own?.db ?? db);
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err;
    throw new Error('the broker database role may not migrate: run `npm run migrate` with DATABASE_OWNER_URL (the schema owner), or give the broker DATABASE_OWNER_URL too', { cause: err });
  } finally {
    await own?.db.destroy();
  }
}

/**
 * Brings the schema up to date (as the owner when its URL is given, granting the broker role its
 * rights), then says whether the audit log's append-only rule binds the broker's role or is advisory.
 */
export async function prepareDatabase(o: PrepareOptions): Promise<Prepared> {
  const applied = o.ownerUrl ? await migrateAsOwner(o.ownerUrl, o.db) : await migrateAsBroker(o.db, o.url);
  // has_table_privilege is true for the owner and for superusers, who could also disable the trigger.
  const { rows } = await sql<{ advisory: boolean }>`
    select has_table_privilege('audit_events', 'UPDATE') or has_table_privilege('audit_events', 'DELETE')
        or has_table_privilege('audit_events', 'TRUNCATE') or has_table_privilege('audit_anchor', 'UPDATE') as advisory`.execute(o.db);
  const appendOnly = rows[0]!.advisory ? 'advisory' : 'enforced';
  if (appendOnly === 'advisory') {
    o.log.warn(
      { role: await currentUser(o.db) },
      'the broker database role may change audit rows: append-only is advisory (a trigger it could disable). Give DATABASE_URL a restricted role and DATABASE_OWNER_URL the schema owner (docs/database-roles.md)',
    );
  }
  return { applied, appendOnly };
}
