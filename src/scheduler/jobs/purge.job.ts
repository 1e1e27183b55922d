import { sql } from 'kysely';
import type { Database } from '../../db/database.js';
import type { RegistrySnapshot } from '../../config/registry.js';
import type { JobResult } from '../job.js';
import { purgeExpiredAssertionJtis } from '../../identity/assertion.repository.js';
import { purgeSignalsBefore } from '../../signals/signal.repository.js';
import { DECISION_RETENTION_SECONDS, GRANT_RETENTION_SECONDS } from '../../audit/row-retention.js';

const DAY_SECONDS = 86_400;
/** Client-assertion jtis are kept a little past their expiry: the replay check compares against `exp`. */
const ASSERTION_JTI_GRACE_SECONDS = 600;
/** Delivered webhook rows are kept this long for support questions ("did we send it?"). */
const DELIVERED_RETENTION_SECONDS = 30 * DAY_SECONDS;
/**
 * Signals older than the longest maximum age a signal type may declare (7 days) are stale to every
 * policy; one more day keeps them for an investigation of the day before. Decisions keep their own
 * copy of every signal they used.
 */
const SIGNAL_RETENTION_SECONDS = 8 * DAY_SECONDS;
/** Request buckets feed the last-minute and last-hour rates; two hours is past any window read. */
const REQUEST_BUCKET_RETENTION_SECONDS = 2 * 3600;
/** Usage days beyond the novelty baseline (a setting) can no longer make a target "known"; one day of slack for time zones. */
const BASELINE_SLACK_DAYS = 1;
/** Rows deleted per statement, so a large backlog never holds long locks. */
const PURGE_BATCH = 5_000;

/** Runs a batched delete until a statement deletes nothing; returns how many rows went. */
async function purgeBatches(db: Database, statement: (limit: number) => ReturnType<typeof sql>): Promise<number> {
  let total = 0;
  for (;;) {
    const n = Number((await statement(PURGE_BATCH).execute(db)).numAffectedRows ?? 0);
    total += n;
    if (n === 0) return total;
  }
}

const before = (now: Date, seconds: number) => new Date(now.getTime() - seconds * 1000);

/**
 * Deletes what can no longer matter, each kind past its retention: replay-cache entries, signals,
 * request-rate buckets, usage days beyond the novelty baseline, delivered webhooks, ended grants with
 * their events, and decisions. Audit events are not touched: their retention keeps the hash chain
 * verifiable and is the audit area's (src/audit/audit-retention.ts); verify accepts a decisions or
 * grants row gone once it is past the retention here (src/audit/row-retention.ts). A grant goes only without
 * children left (its delegation lineage) and without an approval pointing at it.
 */
export async function purgeExpired(deps: { db: Database; registry: { snapshot: RegistrySnapshot } }, now: Date): Promise<JobResult> {
  const { db } = deps;
  const baselineDays = deps.registry.snapshot.settings.novelty_baseline_days + BASELINE_SLACK_DAYS;
  const detail = {
    assertion_jtis: await purgeExpiredAssertionJtis(db, before(now, ASSERTION_JTI_GRACE_SECONDS)),
    signals: await purgeSignalsBefore(db, before(now, SIGNAL_RETENTION_SECONDS)),
    request_buckets: await purgeBatches(db, (n) => sql`
      delete from request_buckets where ctid = any(array(
        select ctid from request_buckets where minute < ${before(now, REQUEST_BUCKET_RETENTION_SECONDS)} limit ${n}))`),
    usage_baseline: await purgeBatches(db, (n) => sql`
      delete from usage_baseline where ctid = any(array(
        select ctid from usage_baseline where day < (${now}::timestamptz at time zone 'UTC')::date - ${baselineDays}::int limit ${n}))`),
    webhook_deliveries: await purgeBatches(db, (n) => sql`
      delete from webhook_deliveries where id in (
        select id from webhook_deliveries where status = 'delivered' and delivered_at < ${before(now, DELIVERED_RETENTION_SECONDS)} limit ${n})`),
    grants: await purgeBatches(db, (n) => sql`
      with doomed as (
        select id from grants g
        where g.status <> 'active' and g.ended_at < ${before(now, GRANT_RETENTION_SECONDS)}
          and not exists (select 1 from grants c where c.parent_id = g.id)
          and not exists (select 1 from approvals a where a.grant_id = g.id)
        limit ${n}
      ), events as (
        select id from security_events where grant_id in (select id from doomed)
      ), deliveries as (
        delete from webhook_deliveries where event_id in (select id from events)
      ), removed_events as (
        delete from security_events where id in (select id from events)
      )
      delete from grants where id in (select id from doomed)`),
    decisions: await purgeBatches(db, (n) => sql`
      delete from decisions where id in (select id from decisions where created_at < ${before(now, DECISION_RETENTION_SECONDS)} limit ${n})`),
  };
  return { processed: Object.values(detail).reduce((a, b) => a + b, 0), detail };
}
