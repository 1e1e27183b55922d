import { type Kysely } from 'kysely';

// Frozen: continuous re-evaluation keeps, per grant, its latest re-evaluation (2026-12-01).
// Imports nothing from src/.

export async function up(db: Kysely<unknown>): Promise<void> {
  // The decision of the grant's latest re-evaluation: its recorded signals are what the grant was last
  // judged on, so a signal newer than those (or one that went stale) makes the grant due again, and an
  // unchanged one does not. Null until the first re-evaluation (the mint decision stands for it).
  await db.schema
    .alterTable('grants')
    .addColumn('reevaluation_decision_id', 'uuid')
    .addColumn('reevaluated_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('grants').dropColumn('reevaluation_decision_id').dropColumn('reevaluated_at').execute();
}
