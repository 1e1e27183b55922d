import { sql, type Kysely } from 'kysely';

/** What the broker may do on every table not listed below. */
const FULL_DML = 'select, insert, update, delete';

/**
 * Tables the broker may not freely change. The audit log is append-only: rows go in, none change or
 * leave, except through the SECURITY DEFINER retention function. audit_pending may be deleted from only
 * because its trigger lets a row leave solely into the chain; UPDATE of one column only because the
 * sealer's SELECT … FOR UPDATE SKIP LOCKED needs it (another trigger refuses every actual update).
 * Migration bookkeeping is the owner's.
 */
const RESTRICTED: Record<string, string> = {
  audit_events: 'select, insert',
  audit_anchor: 'select',
  audit_pending: 'select, insert, delete, update (id)',
  kysely_migration: 'select',
  kysely_migration_lock: 'select',
};
/** A future audit table nobody listed yet is append-only until someone decides otherwise. */
const UNLISTED_AUDIT = 'select, insert';

/** The privileges `table` gets, by the rules above. */
export function brokerPrivilegesOn(table: string): string {
  return RESTRICTED[table] ?? (table.startsWith('audit_') ? UNLISTED_AUDIT : FULL_DML);
}

/**
 * As the schema owner: grants `role` exactly what the broker needs, table by table, after revoking
 * whatever it had (so a table that became restricted loses its old rights). One transaction, so a
 * broker running during a deploy never sees a moment without its rights. Idempotent.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- runs before any typed schema is known
export async function grantBrokerPrivileges(owner: Kysely<any>, role: string): Promise<void> {
  const grantee = sql.id(role);
  await owner.transaction().execute(async (trx) => {
    const { rows } = await sql<{ name: string }>`select tablename as name from pg_tables where schemaname = 'public' order by 1`.execute(trx);
    await sql`grant usage on schema public to ${grantee}`.execute(trx);
    for (const { name } of rows) {
      await sql`revoke all on table ${sql.id(name)} from ${grantee}`.execute(trx);
      await sql`grant ${sql.raw(brokerPrivilegesOn(name))} on table ${sql.id(name)} to ${grantee}`.execute(trx);
    }
    await sql`grant usage, select on all sequences in schema public to ${grantee}`.execute(trx);
    await sql`grant execute on function tessera_audit_purge(bigint) to ${grantee}`.execute(trx);
  });
}
