import { sql, type Kysely } from 'kysely';

// Frozen: each replica writes its request counts to a shard of its own (2026-12-02). Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // A replica takes its shard from this sequence when it starts, so no two running replicas share one.
  // The column was smallint, all replicas adding to shard 0; starts would wrap a smallint within weeks.
  await sql`alter table request_buckets alter column shard type integer`.execute(db);
  await sql`create sequence request_bucket_shards as integer minvalue 1 cycle`.execute(db);
}

/** Back to one shared shard: each (workload, minute) summed into shard 0. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop sequence request_bucket_shards`.execute(db);
  await sql`
    with gone as (delete from request_buckets returning workload_id, minute, n)
    insert into request_buckets (workload_id, minute, shard, n)
    select workload_id, minute, 0, sum(n)::int from gone group by workload_id, minute`.execute(db);
  await sql`alter table request_buckets alter column shard type smallint`.execute(db);
}
