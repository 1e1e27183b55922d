import { sql, type Kysely } from 'kysely';

// Frozen: approvers are people, not keys, as of 2026-12-01. Imports nothing from src/.
// - admin_keys.person: who holds a key (one person may hold several keys); existing keys are their name.
// - approval_votes.person: who voted, lowercased; one vote per person per approval, whatever the key.
// - approvals.workload_sponsor and approvals.forbid (text[]) replace forbid_owner: which of the
//   workload's owner and sponsor may not vote on its requests.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table admin_keys add column person text`.execute(db);
  await sql`update admin_keys set person = name`.execute(db);
  await sql`alter table admin_keys alter column person set not null`.execute(db);

  await sql`alter table approval_votes add column person text`.execute(db);
  await sql`update approval_votes set person = lower(case when approver like 'admin:%' then substr(approver, 7) else approver end)`.execute(db);
  // Two keys of one name in different case may both have voted: those keep their approver string,
  // which the primary key already makes unique, so the constraint below can be created.
  await sql`
    update approval_votes v set person = v.approver
    where exists (select 1 from approval_votes o where o.approval_id = v.approval_id and o.person = v.person and o.approver < v.approver)`.execute(db);
  await sql`alter table approval_votes alter column person set not null`.execute(db);
  await sql`alter table approval_votes add constraint approval_votes_one_per_person unique (approval_id, person)`.execute(db);

  await sql`alter table approvals add column workload_sponsor text`.execute(db);
  await sql`alter table approvals add column forbid text[] not null default '{}'`.execute(db);
  await sql`update approvals set forbid = '{owner}' where forbid_owner`.execute(db);
  await sql`alter table approvals alter column forbid drop default`.execute(db);
  await sql`alter table approvals drop column forbid_owner`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table approvals add column forbid_owner boolean not null default true`.execute(db);
  await sql`update approvals set forbid_owner = 'owner' = any(forbid)`.execute(db);
  await sql`alter table approvals drop column forbid, drop column workload_sponsor`.execute(db);
  await sql`alter table approval_votes drop constraint approval_votes_one_per_person, drop column person`.execute(db);
  await sql`alter table admin_keys drop column person`.execute(db);
}
