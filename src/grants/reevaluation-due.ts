import { sql, type RawBuilder } from 'kysely';
import type { WatchFresh } from './grant.table.js';

/** What makes an active grant due for re-evaluation (see dueCondition). */
export interface DueSignals {
  /** Each registered signal type's maximum age in seconds: a fresh observation older than that is stale now. */
  maxAges: Record<string, number>;
  /** Only grants whose last decision read a signal about one of these subjects (just ingested ones). */
  subjects?: string[];
  /**
   * Only grants that can be due, found through their indexes instead of testing every watching grant:
   * those watching one of these (type, subject) keys (see watchKey), with `byTime` also those whose
   * `due_at` has come, and these `ids`. Absent: every watching grant is tested.
   */
  candidates?: { keys: string[]; byTime: boolean; ids?: readonly string[] };
}

/** A (type, subject) as a grant's `watched_keys` holds it. Type names are snake_case, so ':' ends the type. */
export const watchKey = (type: string, subject: string) => `${type}:${subject}`;

/** watchKey in SQL, for a type and a subject column or expression. */
export const watchKeySql = (type: RawBuilder<unknown>, subject: RawBuilder<unknown>) => sql<string>`${type} || ':' || ${subject}`;

type Use = { type: string; subject: string | null; status: string; value?: unknown; observed_at?: string; fresh_until?: string };

/**
 * What a grant keeps of the decision it was last judged on (`basis`), for the sweep to find it by:
 * whether it watches a signal at all (dueCondition looks only at uses with a subject; a grant judged on
 * none is never tested), the (type, subject) keys it read (a new observation of one may change its
 * answer), the first moment a fresh signal it read goes stale or expires (null: none was fresh), the
 * decision all that was worked out from, and how it judged each key it read fresh (see freshFor).
 */
export function watchOf(basis: string, used: readonly Use[]) {
  const keys: string[] = [];
  const fresh: WatchFresh['keys'] = {};
  let due: string | undefined;
  for (const u of used) {
    if (u.subject === null) continue;
    const key = watchKey(u.type, u.subject);
    // A key read twice is left out: what the decision judged of it is not one thing.
    if (keys.includes(key)) delete fresh[key];
    else if (u.status === 'fresh' && u.value !== undefined && u.observed_at && u.fresh_until) fresh[key] = { value: u.value, observed_at: u.observed_at, fresh_until: u.fresh_until };
    keys.push(key);
    if (u.status === 'fresh' && u.fresh_until && (due === undefined || u.fresh_until < due)) due = u.fresh_until;
  }
  return {
    watches_signals: keys.length > 0,
    watched_keys: keys.length ? keys : null,
    due_at: due === undefined ? null : new Date(due),
    watch_basis: basis,
    watch_fresh: Object.keys(fresh).length ? ({ basis, keys: fresh } satisfies WatchFresh) : null,
  };
}

/**
 * Whether the newest observation `l` of key `key` (its value, observed_at and expires_at; type `type`)
 * leaves grant `g` as dueCondition would for that key: not due. That is so when its latest decision
 * (the basis its watch_fresh names) judged the key fresh with the same value, from `l` itself or an
 * older observation, that freshness has not ended by the type's maximum age of now, `l` expires no
 * sooner, and no re-evaluation of the grant has failed since. Read from the grant's own row, not from
 * its decision: the sweep's candidates leave such grants out, so an attestor's heartbeat, or the minute
 * after a change that every grant watching the key has been re-decided on, no longer tests them all.
 * A grant judged stale, invalid or missing on the key, one whose watch_fresh names another decision
 * (written by an older broker, or before an operator's edit), or one already due by time on another
 * key (its due_at has come: the signal hook, which asks by key alone, then decides it at once as it
 * did before), stays a candidate and is tested in full.
 */
export function freshFor(
  key: RawBuilder<string>,
  type: RawBuilder<string>,
  l: { observed_at: RawBuilder<unknown>; value: RawBuilder<unknown>; expires_at: RawBuilder<unknown> },
  maxAges: Record<string, number>,
  now: Date,
) {
  const judged = sql`(g.watch_fresh->'keys'->${key})`;
  const freshUntil = sql`(${judged}->>'fresh_until')::timestamptz`;
  const observedAt = sql`(${judged}->>'observed_at')::timestamptz`;
  return sql<boolean>`coalesce(g.reevaluation_failures = 0 and g.due_at > ${now}
    and g.watch_fresh->>'basis' = coalesce(g.reevaluation_decision_id, g.decision_id)::text
    and ${l.observed_at} >= ${observedAt} and ${l.value} = ${judged}->'value'
    and ${freshUntil} > ${now}
    and (${l.expires_at} is null or ${l.expires_at} >= ${freshUntil})
    and ${observedAt} >= ${now}::timestamptz - make_interval(secs => (${JSON.stringify(maxAges)}::jsonb->>${type})::float8), false)`;
}

/** A grant whose watch was worked out from another decision than its latest (see the migration's watch_basis). */
export const WATCH_OUTDATED = sql<boolean>`watch_basis is distinct from coalesce(reevaluation_decision_id, decision_id)`;

/**
 * SQL for what watchOf gives, from grant `g`'s latest decision as recorded and the maximum ages of now:
 * how the sweep brings `due_at` up to date when an operator changes a signal type's maximum age (a
 * mint's own `fresh_until` was worked out with the age of its time). A signal's own expiry is read
 * from the observation the decision used, as dueCondition reads it.
 */
export function watchColumns(maxAges: Record<string, number>) {
  const used = sql`from decisions d, jsonb_array_elements(d.signals->'used') u
    where d.id = coalesce(g.reevaluation_decision_id, g.decision_id) and u->>'subject' is not null`;
  return {
    watched_keys: sql<string[] | null>`(select array_agg(${watchKeySql(sql`(u->>'type')`, sql`(u->>'subject')`)}) ${used})`,
    due_at: sql<Date | null>`(select min(least(
        (u->>'observed_at')::timestamptz + make_interval(secs => (${JSON.stringify(maxAges)}::jsonb->>(u->>'type'))::float8),
        (select s.expires_at from signals s where s.type = u->>'type' and s.subject = u->>'subject'
          and s.observed_at = (u->>'observed_at')::timestamptz order by s.id desc limit 1)))
      ${used} and u->>'status' = 'fresh')`,
  };
}

/**
 * Whether grant `g` was last judged on signals that are out of date: its latest decision (the mint's,
 * or its latest re-evaluation's) used an observation of some (type, subject) that is no longer the
 * newest one received, saw none where one has arrived since, or used a fresh one that has since passed
 * its type's maximum age or its own `expires_at` (or was sent again with an earlier `expires_at` than
 * the one it was judged fresh until: its `due_at` would be too late). A newer observation that repeats
 * the fresh value the grant was judged on, and is fresh at least as long, changes nothing a decision
 * reads (policy sees only fresh values): the grant is not due for it, and is re-decided, on the newer
 * one, when the freshness it was judged on ends. Without that, every heartbeat of an attestor re-decided
 * every grant watching its subject: 21,359 decisions, 25 s of broker and 37 s of Postgres CPU for one
 * repeated "trusted". A grant whose last re-evaluation failed is not let off so: a decision that
 * succeeds clears its failures; nor is one whose decision recorded no `fresh_until` (older brokers'). The comparison is with what the decision recorded,
 * not with a clock, so it holds however signals and mints interleave: a grant minted while a signal
 * was being stored, or a signal whose in-process re-evaluation was lost in a crash, is due at the
 * next run. A re-evaluation records what it read, so an unchanged grant is not due again.
 */
export function dueCondition(due: DueSignals, now: Date) {
  const subjects = due.subjects ? sql`and u->>'subject' = any(${due.subjects}::text[])` : sql``;
  return sql<boolean>`exists (
    select 1 from decisions d, jsonb_array_elements(d.signals->'used') u
    left join lateral (
      select s.observed_at, s.value, s.expires_at from signals s
      where s.type = u->>'type' and s.subject = u->>'subject'
      order by s.observed_at desc, s.id desc limit 1
    ) l on true
    where d.id = coalesce(g.reevaluation_decision_id, g.decision_id) and u->>'subject' is not null ${subjects}
      and (
        (l.observed_at is not null and (u->>'observed_at' is null
          or (l.observed_at > (u->>'observed_at')::timestamptz and not coalesce(g.reevaluation_failures = 0 and u->>'status' = 'fresh'
            and l.value is not distinct from u->'value' and (u->>'fresh_until')::timestamptz > ${now}
            and (l.expires_at is null or l.expires_at >= (u->>'fresh_until')::timestamptz), false))
          or (l.observed_at = (u->>'observed_at')::timestamptz and l.value is distinct from u->'value')))
        or (u->>'status' = 'fresh' and (
          (u->>'observed_at')::timestamptz < ${now}::timestamptz - make_interval(secs => (${JSON.stringify(due.maxAges)}::jsonb->>(u->>'type'))::float8)
          or (l.observed_at = (u->>'observed_at')::timestamptz and (l.expires_at <= ${now}
            or l.expires_at < (u->>'fresh_until')::timestamptz)))))
  )`;
}
