import type { Kysely } from 'kysely';

// Frozen: the policy version (content hash of schema + policies) each configuration version compiled
// to, so a decision's policy_version leads to who applied it and when. Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('config_versions').addColumn('policy_version', 'text').execute();
  await db.schema.createIndex('config_versions_policy_version').on('config_versions').column('policy_version').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('config_versions_policy_version').ifExists().execute();
  await db.schema.alterTable('config_versions').dropColumn('policy_version').execute();
}
