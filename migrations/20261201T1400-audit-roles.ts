import { sql, type Kysely } from 'kysely';

// Frozen: append-only enforcement that holds against the broker's own database role, as of 2026-12-01.
// Imports nothing from src/. Roles are deployment-level, so this file names none: the owner of these
// objects is whoever runs the migration (the schema owner), and the broker role gets its rights from
// the privilege grant that runs after migrating.

export async function up(db: Kysely<unknown>): Promise<void> {
  // Which staged row a sealed event came from: the outbox guard below lets a staged row leave only
  // when its event is in the chain, and the unique index makes sealing one row twice impossible.
  // Not part of the chain hash: it links storage, it does not describe what happened.
  await db.schema.alterTable('audit_events').addColumn('pending_id', 'bigint').execute();
  await sql`create unique index audit_events_pending on audit_events (pending_id) where pending_id is not null`.execute(db);

  // The retention door now needs two keys: the flag, and running as the tables' owner. The broker's
  // role can set the flag (any role can set a custom setting) but is not the owner, so only the
  // SECURITY DEFINER purge function below opens it. A superuser is a member of every role: with a
  // single superuser URL the door is as advisory as before, which the broker says in its start-up log.
  await sql`
    create or replace function tessera_audit_guard() returns trigger language plpgsql as $$
    begin
      if coalesce(current_setting('tessera.audit_retention', true), '') = 'on'
         and pg_has_role(current_user, (select relowner from pg_class where oid = tg_relid), 'USAGE')
         and ((tg_table_name = 'audit_events' and tg_op = 'DELETE')
              or (tg_table_name = 'audit_anchor' and tg_op = 'UPDATE')) then
        return null;
      end if;
      raise exception '% on % refused: the audit log is append-only', tg_op, tg_table_name
        using errcode = 'insufficient_privilege';
    end
    $$`.execute(db);

  // Retention, as the owner. It purges exactly the range that an audit.purged event, already appended
  // as the newest event of this transaction's chain, names: so nothing is ever purged without the
  // chain saying what, and a purge cannot be replayed (the anchor has moved past its range).
  await sql`
    create function tessera_audit_purge(purge_seq bigint) returns bigint
    language plpgsql security definer
    set search_path = pg_catalog, public
    as $$
    declare
      e audit_events;
      a audit_anchor;
      through bigint;
      n bigint;
    begin
      -- The chain lock every appender takes ('tessaudt' as an int64): no event lands meanwhile.
      perform pg_advisory_xact_lock(8387236820440933492);
      select * into e from audit_events where seq = purge_seq;
      if e.seq is null or e.action <> 'audit.purged' then
        raise exception 'seq % is not an audit.purged event', purge_seq using errcode = 'insufficient_privilege';
      end if;
      if exists (select 1 from audit_events where seq > purge_seq) then
        raise exception 'the audit.purged event must be the newest event' using errcode = 'insufficient_privilege';
      end if;
      select * into a from audit_anchor where id = 1;
      through := (e.data->>'through_seq')::bigint;
      if through is null or through <= a.seq or through >= purge_seq
         or (e.data->>'from_seq')::bigint is distinct from a.seq + 1
         or (e.data->>'count')::bigint is distinct from through - a.seq
         or not exists (select 1 from audit_events where seq = through and hash = e.data->>'through_hash') then
        raise exception 'audit.purged event % does not name the range after the anchor', purge_seq
          using errcode = 'insufficient_privilege';
      end if;
      -- Opened for these two statements only (a function SET clause would be tidier, but only a
      -- superuser may attach a custom setting to a function); an error rolls the flag back too.
      perform set_config('tessera.audit_retention', 'on', true);
      delete from audit_events where seq <= through;
      get diagnostics n = row_count;
      update audit_anchor set seq = through, hash = e.data->>'through_hash', updated_at = e.at where id = 1;
      perform set_config('tessera.audit_retention', 'off', true);
      return n;
    end
    $$`.execute(db);
  await sql`revoke all on function tessera_audit_purge(bigint) from public`.execute(db);

  // A staged event leaves the outbox only into the chain, unchanged: deleting a row whose event is not
  // sealed (or was sealed with other content) fails the whole statement. Statement-level over the
  // deleted set, so a batch of 2,000 costs one anti-join, not 2,000 trigger calls.
  await sql`
    create function audit_pending_sealed_only() returns trigger language plpgsql as $$
    begin
      if exists (
        select 1 from gone g where not exists (
          select 1 from audit_events e
          where e.pending_id = g.id and e.at = g.at and e.actor = g.actor and e.action = g.action
            and e.outcome = g.outcome and e.data = g.data
            and e.target_type is not distinct from g.target_type and e.target_id is not distinct from g.target_id
            and e.request_id is not distinct from g.request_id)) then
        raise exception 'audit_pending rows leave only into the audit chain' using errcode = 'insufficient_privilege';
      end if;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger audit_pending_sealed_only after delete on audit_pending
    referencing old table as gone for each statement execute function audit_pending_sealed_only()`.execute(db);
  // TRUNCATE triggers get no transition table, and a truncate can never be a seal: refused outright.
  await sql`
    create function audit_pending_no_truncate() returns trigger language plpgsql as $$
    begin
      raise exception 'audit_pending rows leave only into the audit chain' using errcode = 'insufficient_privilege';
    end $$`.execute(db);
  await sql`
    create trigger audit_pending_no_truncate before truncate on audit_pending
    for each statement execute function audit_pending_no_truncate()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists audit_pending_no_truncate on audit_pending`.execute(db);
  await sql`drop function if exists audit_pending_no_truncate()`.execute(db);
  await sql`drop trigger if exists audit_pending_sealed_only on audit_pending`.execute(db);
  await sql`drop function if exists audit_pending_sealed_only()`.execute(db);
  await sql`drop function if exists tessera_audit_purge(bigint)`.execute(db);
  await sql`drop index if exists audit_events_pending`.execute(db);
  await db.schema.alterTable('audit_events').dropColumn('pending_id').execute();
}
