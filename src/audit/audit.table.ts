import type { ColumnType, Generated } from 'kysely';

/** A column that can be inserted but never updated: the type system refuses what the trigger refuses. */
type AppendOnly<S, I = S> = ColumnType<S, I, never>;

export interface AuditTables {
  audit_events: {
    /** bigint comes back from pg as a string so it never loses precision. */
    seq: AppendOnly<string, string | number>;
    id: AppendOnly<string>;
    at: AppendOnly<Date>;
    actor: AppendOnly<string>;
    action: AppendOnly<string>;
    target_type: AppendOnly<string | null>;
    target_id: AppendOnly<string | null>;
    request_id: AppendOnly<string | null>;
    outcome: AppendOnly<string>;
    data: AppendOnly<Record<string, unknown>, string>;
    prev_hash: AppendOnly<string>;
    hash: AppendOnly<string>;
    /** The audit_pending row this event sealed (not hashed: a storage link the outbox guard checks). */
    pending_id: AppendOnly<string | null, string | null | undefined>;
  };
  /** One row (id = 1), moved only by retention; inserted by the migration. */
  audit_anchor: {
    id: ColumnType<number, never, never>;
    seq: ColumnType<string, never, string>;
    hash: ColumnType<string, never, string>;
    updated_at: ColumnType<Date | null, never, Date>;
  };
}

export interface AuditOutboxTables {
  audit_pending: {
    id: Generated<string>;
    at: Date;
    actor: string;
    action: string;
    target_type: string | null;
    target_id: string | null;
    request_id: string | null;
    outcome: string;
    data: ColumnType<unknown, string, string>;
  };
}
