import type { ColumnType } from 'kysely';

type Json<T = unknown> = ColumnType<T, string, string>;

export interface DecisionTables {
  decisions: {
    id: string;
    created_at: Date;
    request_id: string | null;
    workload_id: string;
    task: string;
    outcome: 'allow' | 'step_up' | 'deny';
    reasons: string[];
    errors: string[];
    determining: string[];
    policy_version: string | null;
    config_version: ColumnType<string | null, string | number | null, string | number | null>;
    request: Json<Record<string, unknown>>;
    signals: Json<Record<string, unknown>>;
    ttl_seconds: number | null;
    max_ttl_seconds: number | null;
    latency_us: number;
    kind: ColumnType<string, string | undefined, string>;
    grant_id: string | null;
  };
  /** One row: what the re-evaluation sweeps of every replica have completed (see reevaluateDueGrants). */
  reevaluation_sweep: {
    id: number;
    /** The maximum ages every active watching grant's due_at was brought up to date with, by completed full runs. */
    max_ages: Json<Record<string, number>>;
    /** Completed runs have read the arrivals before this (less the lookback, as every run does). */
    covered_until: Date;
  };
}
