import type { ColumnType, Generated } from 'kysely';

type Json<T = unknown> = ColumnType<T, string, string>;

export interface SignalTables {
  signals: {
    id: Generated<string>;
    type: string;
    subject: string;
    value: Json;
    source: string;
    observed_at: Date;
    expires_at: Date | null;
    received_at: Date;
  };
  request_buckets: { workload_id: string; minute: Date; shard: number; n: number };
  usage_baseline: { workload_id: string; task: string; param: string; value_sha256: string; day: ColumnType<Date, string, string> };
}
