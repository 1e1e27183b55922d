import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { post } from '../support/broker.js';
import { createVerifier, VerificationError } from '../../src/verify/index.js';
import { reevaluateActiveGrants } from '../../src/grants/reevaluate.js';
import { expireGrants } from '../../src/grants/expire-grants.job.js';
import { revokeGrants } from '../../src/grants/revocation.service.js';
import { publishStatusList, STATUS_LIST_TTL_SECONDS } from '../../src/grants/status-list.service.js';
import { deliverWebhooks, MAX_ATTEMPTS, backoffSeconds } from '../../src/events/deliver-webhooks.job.js';
import { webhookFailed } from '../../src/events/webhook.metrics.js';
import { CAEP_SESSION_REVOKED } from '../../src/grants/grant-events.js';
import { startLifecycleBroker, startReceiver, type Lifecycle } from './support.js';
import { sql } from 'kysely';
import { decodeStatusList, statusAt } from '../../src/verify/status-list.js';
import { StatusIndexAllocator } from '../../src/grants/status-index.js';
import { JOBS } from '../../src/scheduler/jobs.js';

let t: Lifecycle;
let rs: { client_id: string; client_secret: string };
beforeAll(async () => {
  t = await startLifecycleBroker();
  rs = (await t.admin('/resource-servers', { name: 'deploy-api', audiences: ['https://deploy.example', 'https://payments.example'] })).body as typeof rs;
});
afterAll(async () => t.close());

const now = () => t.broker.clock.now();
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const introspect = (token: string, auth = basic(rs.client_id, rs.client_secret)) =>
  post(`${t.broker.url}/oauth2/introspect`, { token }, { authorization: auth }, true);

describe('POST /oauth2/introspect (RFC 7662)', () => {
  it('needs resource-server credentials, shown once at registration', async () => {
    expect(rs.client_id).toMatch(/^rs_/);
    const g = await t.mintDeploy();
    const wrong = await introspect(g.token, basic(rs.client_id, 'nope'));
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect((await introspect(g.token, `Bearer ${g.token}`)).status).toBe(401);
    const stored = await t.broker.database.db.selectFrom('resource_servers').selectAll().where('id', '=', rs.client_id).executeTakeFirstOrThrow();
    expect(JSON.stringify(stored)).not.toContain(rs.client_secret);
  });

  it('says active for a live grant and inactive once it is revoked, expired or not ours', async () => {
    const g = await t.mintDeploy(60);
    const live = await introspect(g.token);
    expect(live.status).toBe(200);
    expect(live.headers.get('cache-control')).toBe('no-store');
    expect(live.body).toMatchObject({ active: true, token_type: 'Bearer', sub: 'api-deploy', jti: g.id, scope: 'deploy:write deploy:read', task: 'deploy-prod' });
    await t.admin(`/grants/${g.id}/revoke`, { reason: 'test' });
    expect((await introspect(g.token)).body).toEqual({ active: false });

    const e = await t.mintDeploy(60);
    t.broker.clock.advance(61);
    expect((await introspect(e.token)).body).toEqual({ active: false });
    expect((await introspect('garbage')).body).toEqual({ active: false });
    expect((await introspect(await t.ci.token())).body).toEqual({ active: false });
  });

  it('counts a use of a single-use token: the first answer is active, the next is not, and the grant completes', async () => {
    const g = await t.mintRefund();
    expect((await introspect(g.token)).body).toMatchObject({ active: true, uses_remaining: 0 });
    expect((await introspect(g.token)).body).toEqual({ active: false });
    expect(await t.grant(g.id)).toMatchObject({ status: 'completed', end_reason: 'uses exhausted', use_count: 1 });
    expect(await t.eventsFor(g.id)).toBe(1);
  });

  it('answers inactive to a resource server outside the token audience', async () => {
    const other = (await t.admin('/resource-servers', { name: 'crm', audiences: ['https://crm.example'] })).body;
    const g = await t.mintDeploy();
    expect((await introspect(g.token, basic(other.client_id, other.client_secret))).body).toEqual({ active: false });
  });
});

describe('continuous re-evaluation', () => {
  it('a posture signal turns a grant inactive: revoked with the reason and the linked decision', async () => {
    const g = await t.mintDeploy();
    const keep = await t.mintRefund();
    // The signal "runner posture = compromised" arrives for api-deploy; the decision callback denies.
    const decisionId = crypto.randomUUID();
    const decide = async () => ({ allowed: false, reason: 'runner posture: compromised', decisionId });
    const dry = await reevaluateActiveGrants(t.broker.deps, { workloadId: 'api-deploy' }, decide, now(), { dryRun: true });
    expect(dry.revoked.map((r) => r.grant_id)).toContain(g.id);
    expect((await t.grant(g.id)).status).toBe('active');

    const result = await reevaluateActiveGrants(t.broker.deps, { workloadId: 'api-deploy' }, decide, now());
    expect(result.revoked).toContainEqual({ grant_id: g.id, reason: 'runner posture: compromised', decision_id: decisionId, cascaded: false });
    expect(await t.grant(g.id)).toMatchObject({ status: 'revoked', ended_by: 'policy:reevaluation', end_decision_id: decisionId });
    expect((await t.grant(keep.id)).status).toBe('active');
    expect((await introspect(g.token)).body).toEqual({ active: false });
  });

  it('with no filter (a new policy version) asks about every active grant; a failing decision leaves its grant active', async () => {
    const a = await t.mintDeploy();
    const b = await t.mintRefund();
    const result = await reevaluateActiveGrants(t.broker.deps, {}, async (grant) => {
      if (grant.id === b.id) throw new Error('engine exploded');
      return { allowed: grant.id !== a.id, reason: 'policy v2 forbids', decisionId: null };
    }, now());
    expect(result.evaluated).toBeGreaterThanOrEqual(2);
    expect(result.revoked.map((r) => r.grant_id)).toContain(a.id);
    expect(result.failed).toEqual([{ grant_id: b.id, error: 'engine exploded' }]);
    expect((await t.grant(b.id)).status).toBe('active');
  });
});

describe('Token Status List', () => {
  it('tokens point at the list; revoking flips the bit and tessera/verify rejects the token', async () => {
    const g = await t.mintDeploy(900);
    const claims = decodeJwt(g.token) as { status?: { status_list: { idx: number; uri: string } } };
    expect(claims.status?.status_list.uri).toBe(`${t.broker.url}/v1/status-lists/1`);
    const verifier = createVerifier({ issuer: t.broker.url, audience: 'https://deploy.example', now });
    await expect(verifier.verify(g.token)).resolves.toMatchObject({ jti: g.id });

    const res = await fetch(claims.status!.status_list.uri);
    expect(res.headers.get('content-type')).toContain('application/statuslist+jwt');
    const listJwt = await res.text();
    const jwks = (await (await fetch(`${t.broker.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(listJwt, createLocalJWKSet(jwks), { currentDate: now(), typ: 'statuslist+jwt' });
    expect(protectedHeader.typ).toBe('statuslist+jwt');
    expect(payload).toMatchObject({ sub: claims.status!.status_list.uri, ttl: STATUS_LIST_TTL_SECONDS });

    await t.admin(`/grants/${g.id}/revoke`, { reason: 'status list test' });
    await publishStatusList(t.broker.deps, now());
    // The verifier trusts its cached list for ttl seconds, then sees the flipped bit.
    t.broker.clock.advance(STATUS_LIST_TTL_SECONDS + 1);
    const err = await verifier.verify(g.token).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VerificationError);
    expect((err as VerificationError).code).toBe('token_revoked');
  });

  it('ended grants leave the list once their tokens have expired (plus a margin)', async () => {
    const g = await t.mintDeploy(60);
    const idx = (decodeJwt(g.token) as { status: { status_list: { idx: number } } }).status.status_list.idx;
    await t.admin(`/grants/${g.id}/revoke`, { reason: 'status list test' });
    expect(statusOf(await publishStatusList(t.broker.deps, now()), idx)).toBe(1);
    t.broker.clock.advance(60 + 299);
    expect(statusOf(await publishStatusList(t.broker.deps, now()), idx)).toBe(1);
    t.broker.clock.advance(2);
    expect(statusOf(await publishStatusList(t.broker.deps, now()), idx)).toBe(0);
  });

  it('past 16,384 grants, a token minted after the last publish is inside the list its verifier holds', async () => {
    await jumpStatusIndexes(20_000);
    await publishStatusList(t.broker.deps, now());
    // Minted after the publish: the stored list (fresh, so served as is) must already cover its index.
    const g = await t.mintDeploy();
    const verifier = createVerifier({ issuer: t.broker.url, audience: 'https://deploy.example', now });
    await expect(verifier.verify(g.token)).resolves.toMatchObject({ jti: g.id });

    // A verifier's cached list predates a much later index: it fetches once more instead of failing.
    await jumpStatusIndexes(1_000_000);
    const later = await t.mintDeploy();
    t.broker.clock.advance(1);
    await publishStatusList(t.broker.deps, now());
    await expect(verifier.verify(later.token)).resolves.toMatchObject({ jti: later.id });
  });

  it('republishes a stale list once for a burst of requests, and never replaces a newer list', async () => {
    t.broker.clock.advance(11);
    const uri = `${t.broker.url}/v1/status-lists/1`;
    const bodies = await Promise.all(Array.from({ length: 20 }, () => fetch(uri).then((r) => r.text())));
    // ES256 signatures are randomised: twenty publishes would give twenty different tokens.
    expect(new Set(bodies).size).toBe(1);
    const later = new Date(now().getTime() + 5_000);
    const newer = await publishStatusList(t.broker.deps, later);
    await publishStatusList(t.broker.deps, now());
    const stored = await t.broker.database.db.selectFrom('status_lists').select(['token', 'issued_at']).executeTakeFirstOrThrow();
    expect(stored).toEqual({ token: newer.token, issued_at: later });
  });

  it('answers 404 for an unknown list', async () => {
    expect((await fetch(`${t.broker.url}/v1/status-lists/2`)).status).toBe(404);
  });
});

/** The status at `idx` in a Status List Token the broker published. */
function statusOf(published: { token: string }, idx: number): number {
  return statusAt(decodeStatusList((decodeJwt(published.token) as { status_list: { bits: number; lst: string } }).status_list), idx);
}

/** Moves the index sequence on, as `n` earlier grants would have, and makes the broker draw from it afresh. */
async function jumpStatusIndexes(n: number): Promise<void> {
  await sql`select setval('grant_status_idx_seq', ${n})`.execute(t.broker.database.db);
  t.broker.deps.statusIndexes = new StatusIndexAllocator(t.broker.deps.db);
}

describe('webhooks: CAEP session-revoked SETs', () => {
  it('delivers a signed SET for each revoked grant, verifiable with the broker JWKS', async () => {
    const receiver = await startReceiver();
    try {
      const sub = await t.admin('/webhooks', { url: receiver.url, audience: 'https://siem.example' });
      expect(sub.status).toBe(201);
      const g = await t.mintDeploy();
      await t.admin(`/grants/${g.id}/revoke`, { reason: 'webhook test' });
      const r = await deliverWebhooks(t.broker.deps, now());
      expect(r.detail).toMatchObject({ delivered: 1 });
      expect(receiver.received).toHaveLength(1);
      const jwks = (await (await fetch(`${t.broker.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
      const { payload, protectedHeader } = await jwtVerify(receiver.received[0]!, createLocalJWKSet(jwks), {
        issuer: t.broker.url,
        audience: 'https://siem.example',
        typ: 'secevent+jwt',
        currentDate: now(),
      });
      expect(protectedHeader.typ).toBe('secevent+jwt');
      expect(payload.sub_id).toEqual({ format: 'complex', session: { format: 'opaque', id: g.id }, application: { format: 'opaque', id: 'api-deploy' } });
      expect((payload.events as Record<string, Record<string, unknown>>)[CAEP_SESSION_REVOKED]).toMatchObject({
        initiating_entity: 'admin',
        reason_admin: { en: 'grant revoked: webhook test' },
      });
      expect((await deliverWebhooks(t.broker.deps, now())).processed).toBe(0);
    } finally {
      await t.broker.database.db.updateTable('webhook_subscriptions').set({ disabled_at: now() }).execute();
      await receiver.close();
    }
  });

  it('retries a failing receiver with backoff, then keeps the delivery as failed and counts it', async () => {
    const receiver = await startReceiver(() => 503);
    try {
      await t.admin('/webhooks', { url: receiver.url });
      const g = await t.mintDeploy();
      await t.admin(`/grants/${g.id}/revoke`, { reason: 'retry test' });
      const failedBefore = webhookFailed.get();
      const waits: number[] = [];
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        const r = await deliverWebhooks(t.broker.deps, now());
        expect(r.processed).toBe(1);
        // Not due again before its backoff.
        expect((await deliverWebhooks(t.broker.deps, now())).processed).toBe(0);
        waits.push(backoffSeconds(attempt));
        t.broker.clock.advance(backoffSeconds(attempt));
      }
      expect(receiver.received).toHaveLength(MAX_ATTEMPTS);
      const row = await t.broker.database.db.selectFrom('webhook_deliveries').selectAll().where('status', '!=', 'delivered').executeTakeFirstOrThrow();
      expect(row).toMatchObject({ status: 'failed', attempts: MAX_ATTEMPTS, last_error: 'HTTP 503' });
      expect(webhookFailed.get() - failedBefore).toBe(1);
      expect((await deliverWebhooks(t.broker.deps, now())).processed).toBe(0);
      console.log(`webhook retry schedule (s): ${waits.slice(0, -1).join(', ')}; total ${waits.slice(0, -1).reduce((a, b) => a + b, 0)} s`);
    } finally {
      await receiver.close();
    }
  });
});

describe('webhooks: a backlog', () => {
  it('is delivered batch after batch in one run, revocations before expiries', async () => {
    await t.broker.database.db.updateTable('webhook_subscriptions').set({ disabled_at: now() }).where('disabled_at', 'is', null).execute();
    await expireGrants(t.broker.deps, now());
    const receiver = await startReceiver();
    try {
      await t.admin('/webhooks', { url: receiver.url, audience: 'https://siem.example' });
      const expiring = await insertGrants(60, new Date(now().getTime() - 1_000));
      const live = await insertGrants(60, new Date(now().getTime() + 600_000));
      expect((await expireGrants(t.broker.deps, now())).detail).toMatchObject({ expired: expiring.length });
      expect(await revokeGrants(t.broker.deps.db, { grantIds: live }, { actor: 'admin:test', reason: 'backlog' }, now())).toHaveLength(60);
      // The expiries were queued first; the run still sends the revocations first, and all 120 in one go.
      const run = await deliverWebhooks(t.broker.deps, now());
      expect(run).toMatchObject({ processed: 120, detail: { delivered: 120 } });
      const statuses = receiver.received.map((jwt) => ((decodeJwt(jwt).events as Record<string, { tessera_grant: { status: string } }>)[CAEP_SESSION_REVOKED]!).tessera_grant.status);
      expect(statuses).toHaveLength(120);
      expect(statuses.slice(0, 50)).toEqual(Array(50).fill('revoked'));
      // Batches of 50: the first holds only revocations, the second the last 10 and 40 expiries.
      expect(statuses.slice(100)).toEqual(Array(20).fill('expired'));
      expect(statuses.filter((x) => x === 'revoked')).toHaveLength(60);
    } finally {
      await t.broker.database.db.updateTable('webhook_subscriptions').set({ disabled_at: now() }).where('disabled_at', 'is', null).execute();
      await receiver.close();
    }
  });
});

/** Inserts `n` active grants of api-deploy expiring at `exp` (no token needed for events); returns their ids. */
async function insertGrants(n: number, exp: Date): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    insert into grants (id, workload_id, task, params, scopes, audience, issued_at, expires_at, status, kid, token_sha256, identity)
    select gen_random_uuid(), 'api-deploy', 'deploy-prod', '{}', '{deploy:write}', 'https://deploy.example', ${now()}, ${exp}, 'active', 'k', md5(random()::text), '{}'
    from generate_series(1, ${n}) returning id`.execute(t.broker.database.db);
  return rows.map((r) => r.id);
}

describe('/metrics', () => {
  it('exposes lifecycle counters in Prometheus text format', async () => {
    const res = await fetch(`${t.broker.url}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/tessera_grants_minted_total\{task="deploy-prod"\} \d+/);
    expect(text).toMatch(/tessera_grants_ended_total\{initiating_entity="admin",status="revoked"\} \d+/);
    expect(text).toContain('# TYPE tessera_grant_expiry_lag_seconds histogram');
    expect(text).toMatch(/tessera_webhook_deliveries_failed_total \d+/);
    // Undeliverable and waiting deliveries come from the database: every replica's, and any restart's.
    expect(text).toContain('# TYPE tessera_webhook_deliveries_undeliverable gauge\ntessera_webhook_deliveries_undeliverable 1\n');
    await sql`update webhook_deliveries set status = 'failed' where id = (select id from webhook_deliveries where status = 'delivered' limit 1)`.execute(t.broker.database.db);
    const after = await (await fetch(`${t.broker.url}/metrics`)).text();
    expect(after).toContain('\ntessera_webhook_deliveries_undeliverable 2\n');
    expect(after).toContain('\ntessera_webhook_deliveries_pending 0\n');
    expect(text).toContain('# TYPE tessera_job_runs_total counter');
  });
});

describe('replicas on one database under different issuers', () => {
  it('are noticed when the status list is published: the job warns and names both issuers', async () => {
    const deps = t.broker.deps;
    const other = 'https://other-replica.example';
    const job = JOBS.find((j) => j.name === 'publish-status-list')!;
    const warnings = () => t.broker.logs.filter((l) => l.other_issuer !== undefined).length;
    // After its own fresh list (published a second ago), nothing to notice.
    await publishStatusList(deps, now());
    t.broker.clock.advance(1);
    expect((await publishStatusList(deps, now())).otherIssuer).toBeUndefined();
    await job.run(deps, now());
    expect(warnings()).toBe(0);
    t.broker.clock.advance(1);
    // A replica under another issuer publishes next: it notices this broker's list...
    expect((await publishStatusList({ ...deps, issuer: other }, now())).otherIssuer).toBe(deps.issuer);
    t.broker.clock.advance(1);
    // ...and this broker's job notices the other's, and says what to do.
    await job.run(deps, now());
    expect(t.broker.logs.find((l) => l.other_issuer === other)).toMatchObject({ issuer: deps.issuer, msg: expect.stringContaining('same TESSERA_ISSUER') });
    // A list of the other issuer dated ahead of this broker's clock (a replica whose clock runs fast) counts too.
    await publishStatusList({ ...deps, issuer: other }, new Date(now().getTime() + 60_000));
    expect((await publishStatusList(deps, now())).otherIssuer).toBe(other);
    // Once the other's list is older than its ttl (no such replica any more), nothing is noticed.
    t.broker.clock.advance(60 + STATUS_LIST_TTL_SECONDS + 1);
    expect((await publishStatusList(deps, now())).otherIssuer).toBeUndefined();
  });
});
