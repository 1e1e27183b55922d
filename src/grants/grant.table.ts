import type { ColumnType } from 'kysely';

export type GrantStatus = 'active' | 'expired' | 'completed' | 'revoked';

/**
 * What a grant's latest decision (`basis`) read of each (type, subject) key it judged fresh: the value,
 * the observation's time and the end of its freshness, as the decision recorded them.
 */
export interface WatchFresh {
  basis: string;
  keys: Record<string, { value: unknown; observed_at: string; fresh_until: string }>;
}

export interface GrantTables {
  grants: {
    id: string;
    workload_id: string;
    task: string;
    params: ColumnType<Record<string, unknown>, string, string>;
    scopes: string[];
    audience: string;
    purpose: string | null;
    issued_at: Date;
    expires_at: Date;
    status: GrantStatus;
    ended_at: Date | null;
    ended_by: string | null;
    end_reason: string | null;
    decision_id: string | null;
    approval_id: string | null;
    parent_id: string | null;
    use_count: ColumnType<number, number | undefined, number>;
    max_uses: number | null;
    cnf_jkt: string | null;
    kid: string;
    token_sha256: string;
    identity: ColumnType<Record<string, unknown>, string, string>;
    status_idx: ColumnType<number | null, number | null | undefined, number | null>;
    end_decision_id: ColumnType<string | null, string | null | undefined, string | null>;
    /** The decision of the latest re-evaluation (null until there was one) and when it ran. */
    reevaluation_decision_id: ColumnType<string | null, string | null | undefined, string | null>;
    reevaluated_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
    /** Its latest decision read a signal about a subject, so it can go out of date (see watchOf). */
    watches_signals: ColumnType<boolean, boolean | undefined, boolean>;
    /** The (type, subject) keys its latest decision read (see watchOf); null for a grant that watches none. */
    watched_keys: ColumnType<string[] | null, string[] | null | undefined, string[] | null>;
    /** When a fresh signal its latest decision read goes stale or expires (null: none was fresh). */
    due_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
    /** The decision watched_keys and due_at were worked out from; another than the latest means out of date. */
    watch_basis: ColumnType<string | null, string | null | undefined, string | null>;
    /** For each key its latest decision judged fresh, how (see watchOf); null: none, or an older broker's row. */
    watch_fresh: ColumnType<WatchFresh | null, WatchFresh | null | undefined, WatchFresh | null>;
    /** Consecutive re-evaluations of this grant that failed (0 after one that succeeded). */
    reevaluation_failures: ColumnType<number, number | undefined, number>;
    /** Before this moment the sweep does not try a failed re-evaluation again (null: no backoff). */
    reevaluation_retry_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  };
  status_lists: { id: number; token: string; issued_at: Date; expires_at: Date };
  resource_servers: {
    id: string;
    name: string;
    secret_sha256: string;
    audiences: string[];
    created_by: string;
    created_at: Date;
    revoked_at: Date | null;
  };
}
