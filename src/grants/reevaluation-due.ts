import { sql } from 'kysely';

/** What makes an active grant due for re-evaluation (see dueCondition). */
export interface DueSignals {
  /** Each registered signal type's maximum age in seconds: a fresh observation older than that is stale now. */
  maxAges: Record<string, number>;
  /** Only grants whose last decision read a signal about one of these subjects (just ingested ones). */
  subjects?: string[];
}

/**
 * Whether a decision that recorded these signal uses can ever be due (see dueCondition, which looks only
 * at uses with a subject): kept on the grant, so the sweep skips grants judged on no such signal.
 */
export const watchesSignals = (used: ReadonlyArray<{ subject: string | null }>): boolean => used.some((u) => u.subject !== null);

/**
 * Whether grant `g` was last judged on signals that are out of date: its latest decision (the mint's,
 * or its latest re-evaluation's) used an observation of some (type, subject) that is no longer the
 * newest one received, saw none where one has arrived since, or used a fresh one that has since passed
 * its type's maximum age or its own `expires_at`. The comparison is with what the decision recorded,
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
          or l.observed_at > (u->>'observed_at')::timestamptz
          or (l.observed_at = (u->>'observed_at')::timestamptz and l.value is distinct from u->'value')))
        or (u->>'status' = 'fresh' and (
          (u->>'observed_at')::timestamptz < ${now}::timestamptz - make_interval(secs => (${JSON.stringify(due.maxAges)}::jsonb->>(u->>'type'))::float8)
          or (l.observed_at = (u->>'observed_at')::timestamptz and l.expires_at <= ${now}))))
  )`;
}
