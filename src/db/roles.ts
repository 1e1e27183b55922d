import type pg from 'pg';

/** The role that owns the schema and runs migrations (embedded mode and tests create it). */
export const OWNER_ROLE = 'tessera_owner';
/** The login role the broker runs as: DML on its tables, append-only on the audit log. */
export const BROKER_ROLE = 'tessera_broker';

export interface RolePasswords {
  owner: string;
  broker: string;
}

/**
 * As a superuser: creates the owner and broker login roles, or resets their passwords (so the
 * settings file stays the truth). Neither may create roles or databases, nor bypass row security.
 */
export async function ensureRoles(su: pg.ClientBase, passwords: RolePasswords): Promise<void> {
  for (const [role, password] of [
    [OWNER_ROLE, passwords.owner],
    [BROKER_ROLE, passwords.broker],
  ] as const) {
    const exists = await su.query('select 1 from pg_roles where rolname = $1', [role]);
    const verb = exists.rowCount ? 'alter' : 'create';
    await su.query(`${verb} role ${role} login nosuperuser nocreatedb nocreaterole password ${su.escapeLiteral(password)}`);
  }
}

/**
 * As a superuser: creates `database` owned by the owner role, or hands an existing one to it. A data
 * dir from before the roles existed has its tables owned by the superuser; they are adopted here, so
 * migrations (run as the owner) can alter them and the broker role's grants mean something.
 */
export async function ensureOwnedDatabase(su: pg.ClientBase, database: string, connectTo: (db: string) => pg.Client): Promise<void> {
  const exists = await su.query('select 1 from pg_database where datname = $1', [database]);
  if (exists.rowCount === 0) {
    await su.query(`create database ${su.escapeIdentifier(database)} owner ${OWNER_ROLE}`);
    return;
  }
  await su.query(`alter database ${su.escapeIdentifier(database)} owner to ${OWNER_ROLE}`);
  const inDb = connectTo(database);
  await inDb.connect();
  try {
    // Tables first: their serial sequences follow them (and refuse an owner change of their own).
    await inDb.query(`
      do $$ declare r record; begin
        for r in select c.oid::regclass as name from pg_class c
                 where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
                   and c.relowner <> '${OWNER_ROLE}'::regrole loop
          execute format('alter table %s owner to ${OWNER_ROLE}', r.name);
        end loop;
        for r in select c.oid::regclass as name from pg_class c
                 where c.relnamespace = 'public'::regnamespace and c.relkind = 'S'
                   and c.relowner <> '${OWNER_ROLE}'::regrole loop
          execute format('alter sequence %s owner to ${OWNER_ROLE}', r.name);
        end loop;
        for r in select p.oid::regprocedure as name from pg_proc p
                 where p.pronamespace = 'public'::regnamespace and p.proowner <> '${OWNER_ROLE}'::regrole loop
          execute format('alter function %s owner to ${OWNER_ROLE}', r.name);
        end loop;
      end $$`);
  } finally {
    await inDb.end();
  }
}

/** `url` with another user and password. */
export function withCredentials(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}
