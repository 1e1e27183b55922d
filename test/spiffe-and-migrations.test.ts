import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { sql } from 'kysely';
import { createDatabase } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { startTestBroker, post, type TestBroker } from './support/broker.js';
import { withDatabase } from './support/global-setup.js';

describe('SPIFFE JWT-SVIDs', () => {
  let broker: TestBroker;
  let key: CryptoKey;
  const svid = (sub: string, claims: Record<string, unknown> = {}) => {
    const iat = Math.floor(broker.clock.now().getTime() / 1000);
    return new SignJWT({ sub, aud: ['tessera'], iat, exp: iat + 300, ...claims }).setProtectedHeader({ alg: 'ES256', kid: 'bundle-1' }).sign(key);
  };

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    key = pair.privateKey;
    const bundle = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'bundle-1', use: 'sig' }] };
    broker = await startTestBroker({
      // An air-gapped trust bundle, given inline.
      issuers: [{ id: 'prod-mesh', kind: 'spiffe', trust_domain: 'prod.example.org', jwks: bundle, audiences: ['tessera'], algorithms: ['ES256'] }],
      workloads: [{ id: 'payments-svc', kind: 'service', owner: 'payments', bindings: [{ issuer: 'prod-mesh', subject: 'spiffe://prod.example.org/ns/payments/sa/api' }] }],
      tasks: [{ name: 'read-ledger', scopes: ['ledger:read'], audience: 'https://ledger.example', workloads: ['payments-svc'] }],
    });
  });
  afterAll(() => broker.stop());

  it('maps an SVID of the trust domain to its workload; other trust domains and subjects get 401', async () => {
    const ok = await post(`${broker.url}/v1/grants`, { task: 'read-ledger' }, { authorization: `Bearer ${await svid('spiffe://prod.example.org/ns/payments/sa/api')}` });
    expect(ok.status).toBe(201);
    expect(ok.body.scope).toBe('ledger:read');
    const otherSa = await post(`${broker.url}/v1/grants`, { task: 'read-ledger' }, { authorization: `Bearer ${await svid('spiffe://prod.example.org/ns/payments/sa/batch')}` });
    expect(otherSa.status).toBe(401);
    const otherDomain = await post(`${broker.url}/v1/grants`, { task: 'read-ledger' }, { authorization: `Bearer ${await svid('spiffe://evil.example.org/ns/payments/sa/api')}` });
    expect(otherDomain.status).toBe(401);
  });
});

describe('migrations', () => {
  const created: string[] = [];
  afterAll(async () => {
    const admin = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
    await admin.connect();
    for (const name of created) await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  });

  it('apply each migration once when two brokers start at the same moment', async () => {
    const name = `m_${randomUUID().replace(/-/g, '')}`;
    const admin = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    created.push(name);
    const url = withDatabase(inject('adminDatabaseUrl'), name);
    const a = createDatabase({ url });
    const b = createDatabase({ url });
    try {
      const [ra, rb] = await Promise.all([migrateToLatest(a.db), migrateToLatest(b.db)]);
      const applied = [...ra, ...rb];
      expect(applied.length).toBeGreaterThan(3);
      expect(new Set(applied).size).toBe(applied.length); // none applied twice
      const { rows } = await sql<{ n: string }>`select count(*) as n from kysely_migration`.execute(a.db);
      expect(Number(rows[0]!.n)).toBe(applied.length);
    } finally {
      await a.db.destroy();
      await b.db.destroy();
    }
  });
});
