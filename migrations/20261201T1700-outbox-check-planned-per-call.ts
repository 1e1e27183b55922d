import { sql, type Kysely } from 'kysely';

// Frozen: the outbox's delete check is planned on every call (2026-12-01). Imports nothing from src/.

/** Any deleted row without its sealed event, field for field: the check both versions run. */
const UNSEALED = `
  select 1 from gone g where not exists (
    select 1 from audit_events e
    where e.pending_id = g.id and e.at = g.at and e.actor = g.actor and e.action = g.action
      and e.outcome = g.outcome and e.data = g.data
      and e.target_type is not distinct from g.target_type and e.target_id is not distinct from g.target_id
      and e.request_id is not distinct from g.request_id)`;

export async function up(db: Kysely<unknown>): Promise<void> {
  // The same check, through EXECUTE so that each seal plans it against the chain's size now. The
  // static query of 20261201T1400-audit-roles was planned once per connection (PL/pgSQL keeps the
  // plan of a query without parameters until an ANALYZE), while audit_events was still small: on a
  // database whose chain grew in one burst before autovacuum analysed it (a new deployment's first
  // large expiry), each seal of 1,000 events scanned the whole chain, and the delete took 0.2 s, then
  // 1.3 s, then 4.8 s on the tenth batch, near the 5 s statement timeout (measured; 5-8 ms per batch
  // once analysed). Planning costs well under a millisecond a batch.
  await sql`
    create or replace function audit_pending_sealed_only() returns trigger language plpgsql as $$
    declare
      unsealed boolean;
    begin
      execute $q$select exists (${sql.raw(UNSEALED)})$q$ into unsealed;
      if unsealed then
        raise exception 'audit_pending rows leave only into the audit chain' using errcode = 'insufficient_privilege';
      end if;
      return null;
    end $$`.execute(db);
}

/** Back to the static check of 20261201T1400-audit-roles. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    create or replace function audit_pending_sealed_only() returns trigger language plpgsql as $$
    begin
      if exists (${sql.raw(UNSEALED)}) then
        raise exception 'audit_pending rows leave only into the audit chain' using errcode = 'insufficient_privilege';
      end if;
      return null;
    end $$`.execute(db);
}
