import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import type { NewGrant } from '../../src/grants/grant.repository.js';
import { insertMints, MintWriter } from '../../src/grants/mint.repository.js';
import { usageRows } from '../../src/decisions/history.js';
import { startLifecycleBroker, type Lifecycle } from './support.js';

let t: Lifecycle;
const db = () => t.broker.database.db;

beforeAll(async () => {
  t = await startLifecycleBroker();
});
afterAll(async () => t.close());

/** Counts the statements sent through the returned database (and fails them while `fail` says so). */
function watched(target: Database, fail?: () => Error | undefined) {
  const seen = { statements: 0 };
  const proxy = new Proxy(target, {
    get(obj, prop, receiver) {
      if (prop !== 'executeQuery') return Reflect.get(obj, prop, receiver) as unknown;
      return (...args: Parameters<Database['executeQuery']>) => {
        seen.statements++;
        const err = fail?.();
        return err ? Promise.reject(err) : obj.executeQuery(...args);
      };
    },
  });
  return { db: proxy, seen };
}

/** A grant row like a real mint's: a copy of `template` under a new id, index and token hash. */
async function grantLike(templateId: string, change: Partial<NewGrant> = {}): Promise<NewGrant> {
  const row = await db().selectFrom('grants').selectAll().where('id', '=', templateId).executeTakeFirstOrThrow();
  const idx = await sql<{ idx: number }>`select nextval('grant_status_idx_seq')::integer as idx`.execute(db());
  return {
    id: randomUUID(),
    workload_id: row.workload_id,
    task: row.task,
    params: row.params as Record<string, unknown>,
    scopes: row.scopes,
    audience: row.audience,
    purpose: row.purpose,
    issued_at: row.issued_at,
    expires_at: row.expires_at,
    decision_id: null,
    approval_id: null,
    parent_id: null,
    max_uses: row.max_uses,
    cnf_jkt: null,
    kid: row.kid,
    token_sha256: randomUUID().replace(/-/g, '').padEnd(64, '0'),
    identity: row.identity as Record<string, unknown>,
    status_idx: idx.rows[0]!.idx,
    watches_signals: false,
    watched_keys: null,
    due_at: null,
    watch_basis: null,
    watch_fresh: null,
    ...change,
  };
}
const exists = async (id: string) => (await db().selectFrom('grants').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
const audit = (id: string) => ({ table: 'audit_pending' as const, rows: [{ at: new Date(), actor: 'test', action: 'grant.minted', target_type: 'grant', target_id: id, request_id: null, outcome: 'success', data: {} }] });

describe('mints that commit together share one statement', () => {
  it('concurrent mints through HTTP: every token has its row, in fewer statements than mints', async () => {
    const { db: counted, seen } = watched(t.broker.deps.db);
    const original = t.broker.deps.mints;
    t.broker.deps.mints = new MintWriter(counted);
    try {
      const minted = await Promise.all(Array.from({ length: 12 }, () => t.mintDeploy()));
      expect(seen.statements).toBeLessThan(12);
      for (const m of minted) {
        const row = await db().selectFrom('grants').select(['status', 'decision_id']).where('id', '=', m.id).executeTakeFirstOrThrow();
        expect(row.status).toBe('active');
        expect(await db().selectFrom('decisions').select('id').where('id', '=', row.decision_id!).executeTakeFirst()).toBeDefined();
      }
      await t.broker.deps.audit.flush();
      const events = await db().selectFrom('audit_events').select('target_id').where('action', '=', 'grant.minted').where('target_id', 'in', minted.map((m) => m.id)).execute();
      expect(events).toHaveLength(12);
    } finally {
      t.broker.deps.mints = original;
    }
  });

  it('each mint keeps its own guards: a suspended workload, a revoked key or an ended parent refuses only that one', async () => {
    const first = await t.mintDeploy();
    const ended = await t.mintDeploy();
    expect((await t.admin(`/grants/${ended.id}/revoke`, { reason: 'parent gone' })).status).toBe(200);
    await sql`update workloads set status = 'suspended' where id = 'web-deploy'`.execute(db());
    const revokedKid = `revoked-${randomUUID()}`;
    await sql`insert into signing_keys (kid, alg, public_jwk, private_key_enc, status, created_at) values (${revokedKid}, 'ES256', '{}'::jsonb, 'x', 'revoked', now())`.execute(db());
    try {
      const writes = [
        await grantLike(first.id),
        await grantLike(first.id, { workload_id: 'web-deploy' }),
        await grantLike(first.id, { kid: revokedKid }),
        await grantLike(first.id, { parent_id: ended.id }),
        await grantLike(first.id, { parent_id: first.id }),
      ];
      const outcomes = await insertMints(db(), writes.map((grant) => ({ grant, extra: [audit(grant.id)] })));
      expect(outcomes).toEqual(['inserted', 'workload_inactive', 'key_revoked', 'parent_ended', 'inserted']);
      expect(await Promise.all(writes.map((w) => exists(w.id)))).toEqual([true, false, false, false, true]);
      // Nothing of a refused mint was written beside the grant either. (Sealed first: the broker's
      // sealer moves staged events into the chain in the background, between any two reads.)
      await t.broker.deps.audit.flush();
      const sealed = await db().selectFrom('audit_events').select('target_id').where('target_id', 'in', writes.map((w) => w.id)).execute();
      expect(sealed.map((r) => r.target_id).sort()).toEqual([writes[0]!.id, writes[4]!.id].sort());
    } finally {
      await sql`update workloads set status = 'active' where id = 'web-deploy'`.execute(db());
    }
  });

  it('two batches bringing the same new usage keys in opposite orders never deadlock (one global key order)', async () => {
    const first = await t.mintDeploy();
    const mintOf = async (workload: string, value: string) => {
      const grant = await grantLike(first.id, { workload_id: workload });
      return { grant, extra: [{ table: 'usage_baseline' as const, rows: usageRows(workload, 'deploy-prod', { service: value }, new Date()), ignoreConflicts: true }] };
    };
    for (let round = 0; round < 20; round++) {
      const value = `svc-${round}-${randomUUID()}`;
      const a = [await mintOf('api-deploy', value), await mintOf('agent-1', value)];
      const b = [await mintOf('agent-1', value), await mintOf('api-deploy', value)];
      // Before the fix, 13 of 60 such rounds ended in 40P01 (found in review).
      expect(await Promise.all([insertMints(db(), a), insertMints(db(), b)])).toEqual([['inserted', 'inserted'], ['inserted', 'inserted']]);
    }
  });

  it('a row only one mint gets wrong fails the shared statement; each mint is then retried alone', async () => {
    const first = await t.mintDeploy();
    const { db: counted, seen } = watched(db());
    const writer = new MintWriter(counted);
    const good = [await grantLike(first.id), await grantLike(first.id)];
    const clash = await grantLike(first.id, { id: first.id }); // an id that exists: a unique violation
    const results = await Promise.allSettled([...good, clash].map((g) => writer.write(g, [audit(g.id)])));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(await Promise.all(good.map((g) => exists(g.id)))).toEqual([true, true]);
    expect(seen.statements).toBe(4); // the shared one, then one per mint
  });

  it('a lost connection fails every mint of the batch at once, with no retries', async () => {
    const first = await t.mintDeploy();
    const { db: broken, seen } = watched(db(), () => new Error('Connection terminated unexpectedly'));
    const writer = new MintWriter(broken);
    const writes = [await grantLike(first.id), await grantLike(first.id), await grantLike(first.id)];
    const results = await Promise.allSettled(writes.map((g) => writer.write(g, [])));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(seen.statements).toBe(1);
    expect(await Promise.all(writes.map((w) => exists(w.id)))).toEqual([false, false, false]);
  });
});
